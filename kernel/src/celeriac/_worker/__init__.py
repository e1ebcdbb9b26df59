"""The worker: bootsteps that connect, consume and execute.

Imports the beat, client, contract and model layers.
"""
