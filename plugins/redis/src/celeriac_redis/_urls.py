"""Reading a Redis URL into what to connect to: one server, a Sentinel-watched master, or a Cluster.

Accepted forms (``,`` separates nodes; kombu's ``;``-joined list is accepted for Sentinel so
that a Celery ``broker_url`` can be pasted as it is):

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...``, ``redis+socket:///path?db=0``
- ``redis+sentinel://[[user]:password@]host:26379,host2:26379/db?master_name=mymaster``
  (``rediss+sentinel://`` for TLS to the master), and kombu's
  ``sentinel://[:password@]host:26379/db;sentinel://host2:26379``
- ``redis+cluster://[[user]:password@]host:7000,host2:7001`` (``rediss+cluster://`` for TLS)
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

from attrs import frozen

from celeriac.plugin import ConfigError
from celeriac.plugin import redact_url

SINGLE_SCHEMES = ("redis", "rediss", "redis+socket")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel", "sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SCHEMES = (*SINGLE_SCHEMES, *SENTINEL_SCHEMES, *CLUSTER_SCHEMES)


@frozen(kw_only=True)
class Target:
    """What a URL names: the kind of deployment, its nodes, the database and credentials."""

    kind: Literal["single", "sentinel", "cluster"]
    url: str  # the single server's URL, for redis-py's from_url
    nodes: tuple[tuple[str, int], ...] = ()
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    master_name: str | None = None


def parse(url: str, master_name: str | None = None) -> Target:
    """The deployment ``url`` names; ``master_name`` is ``[redis] master_name`` (Sentinel).

    :raises ConfigError: naming what is wrong with the URL.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"{redact_url(url)!r} is not a Redis URL: expected redis://host:port/db, rediss://..., "
            "redis+socket:///path, redis+sentinel://host:26379,host2:26379/db?master_name=NAME "
            "or redis+cluster://host:7000,host2:7001"
        )
    if scheme in SINGLE_SCHEMES:
        if scheme == "redis+socket":
            url = "unix" + url[len(scheme) :]
        return Target(kind="single", url=url)
    nodes, db, username, password, query = _read_list(url, scheme)
    tls = scheme.startswith("rediss")
    if scheme in CLUSTER_SCHEMES:
        if db != 0:
            raise ConfigError(f"{url!r}: Redis Cluster has only database 0")
        return Target(
            kind="cluster", url=url, nodes=tuple(nodes), username=username, password=password, tls=tls
        )
    names = query.get("master_name")
    name = names[-1] if names else master_name
    if not name:
        raise ConfigError(
            f"{url!r} names Sentinels but no master: add ?master_name=NAME to the URL "
            "or set [redis] master_name"
        )
    return Target(
        kind="sentinel",
        url=url,
        nodes=tuple(nodes),
        db=db,
        username=username,
        password=password,
        tls=tls,
        master_name=name,
    )


def _read_list(
    url: str, scheme: str
) -> tuple[list[tuple[str, int]], int, str | None, str | None, dict[str, list[str]]]:
    """Nodes, database, credentials and query of a node list.

    kombu joins Sentinel URLs with ``;``, each with its own scheme; credentials and the
    database come from the first one that has them.
    """
    nodes: list[tuple[str, int]] = []
    db = 0
    username = password = None
    query: dict[str, list[str]] = {}
    for part in (part.strip() for part in url.split(";") if part.strip()):
        split = urlsplit(part)
        if split.scheme.lower() != scheme:
            raise ConfigError(f"{url!r}: every node of the list must use {scheme}://, not {split.scheme}://")
        userinfo, _, hosts = split.netloc.rpartition("@")
        if userinfo and password is None:
            user, has_password, secret = userinfo.partition(":")
            username = unquote(user) or None
            password = unquote(secret) if has_password else None
        nodes.extend(_node(url, host, 26379 if "sentinel" in scheme else 6379) for host in hosts.split(","))
        path = split.path.strip("/")
        if path:
            if not path.isdigit():
                raise ConfigError(f"{url!r}: the database must be a number, not {path!r}")
            db = int(path)
        for key, values in parse_qs(split.query).items():
            query.setdefault(key, values)
    return nodes, db, username, password, query


def _node(url: str, text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
    host = host.strip("[]")  # an IPv6 address in brackets
    if not host:
        raise ConfigError(f"{url!r}: a node has no host ({text!r})")
    if port and not port.isdigit():
        raise ConfigError(f"{url!r}: the port of {text!r} is not a number")
    return host, int(port) if port else default_port
