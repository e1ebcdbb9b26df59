"""celeriac-gevent: run tasks on green threads, with the standard library patched first.

Start the worker with ``celeriac-gevent -A proj worker -P gevent -c 500`` (or
``python -m celeriac_gevent ...``): it patches the standard library and only then imports
celeriac and the app. Patching has to come before anything else is imported, because a
module that did ``from threading import Lock`` or ``from socket import socket`` keeps the
blocking originals. That is why this package's ``__init__`` imports nothing at all, against
the usual re-export list: ``python -m celeriac_gevent`` imports it before it can patch. The
plugin (hooks and the pool) is :mod:`celeriac_gevent.plugin`.
"""

__all__: list[str] = []
