"""The contract layer: hook specifications, component protocols, plugin loading, the codec and bootsteps.

Imports only the model layer.
"""
