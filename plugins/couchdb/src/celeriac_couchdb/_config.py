"""The ``[couchdb]`` configuration section."""

from __future__ import annotations

from attrs import field
from attrs import frozen
from attrs import validators


@frozen(kw_only=True)
class CouchConfig:
    """``[couchdb]``: the account and how the store uses the database.

    :param username: a CouchDB user; the URL's user (``couchdb://user:pass@host:port/db``) when None.
    :param password: that user's password; the URL's, else ``COUCHDB_PASSWORD`` from the
        environment, when None. Never printed.
    :param create_database: create the database on first use when it is missing (needs an
        admin); otherwise a missing database is an error naming it.
    :param timeout: seconds to connect and to wait for each answer.
    :param max_connections: HTTP connections kept open to the server.
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    create_database: bool = True
    timeout: float = field(default=20.0, validator=validators.gt(0))
    max_connections: int = field(default=32, validator=validators.ge(1))
