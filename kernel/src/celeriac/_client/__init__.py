"""The client layer: the app, tasks, canvas, results, routing, and running one task (the executor).

Imports the contract and model layers.
"""
