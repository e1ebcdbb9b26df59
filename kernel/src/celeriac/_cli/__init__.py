"""The ``celeriac`` command line.

Imports every other layer; nothing imports it but the public ``run_cli`` and ``__main__``.
"""
