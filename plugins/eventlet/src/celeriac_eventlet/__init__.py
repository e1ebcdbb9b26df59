"""celeriac-eventlet: run tasks on eventlet's green threads, with the standard library patched first.

Start the worker with ``celeriac-eventlet -A proj worker -P eventlet -c 500`` (or
``python -m celeriac_eventlet ...``): it patches the standard library and only then imports
celeriac and the app. Patching has to come before anything else is imported, because a
module that did ``from threading import Lock`` or ``from socket import socket`` keeps the
blocking originals. That is why this package's ``__init__`` imports nothing at all, against
the usual re-export list: ``python -m celeriac_eventlet`` imports it before it can patch. The
plugin (hooks and the pool) is :mod:`celeriac_eventlet.plugin`.
"""

__all__: list[str] = []
