"""The model layer: values with no behaviour beyond validation (message, states, errors, config).

Imports nothing else of the kernel.
"""
