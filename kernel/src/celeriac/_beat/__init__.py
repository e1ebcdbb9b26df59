"""The beat service: periodic tasks sent on their schedules.

Imports the client, contract and model layers.
"""
