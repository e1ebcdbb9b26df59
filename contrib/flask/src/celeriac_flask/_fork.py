"""Database connections a forked process must not share: Flask-SQLAlchemy's engines.

A prefork pool's children are forked from a process that built the Flask app, and a
factory that touches the database (``db.create_all()``) leaves connections in the engines'
pools. Two processes talking on one connection corrupt each other's sessions (PostgreSQL's
"SSL error: decryption failed or bad record mac"), so in a forked child each engine forgets
its pool (``dispose(close=False)``, as SQLAlchemy advises for fork) and opens its own.
"""

from __future__ import annotations

from flask import Flask

from celeriac.plugin import after_fork


def forget_connections_after_fork(app: Flask) -> None:
    """Have every forked child of this process drop ``app``'s inherited database connections."""
    after_fork(app, _dispose_engines)


def _dispose_engines(app: Flask) -> None:
    db = app.extensions.get("sqlalchemy")
    if db is None:
        return
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
