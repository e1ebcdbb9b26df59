"""Reading Redis URLs: single servers, Sentinel (ours and kombu's spelling), Cluster; clear errors."""

from __future__ import annotations

import pytest

from celeriac import ConfigError
from celeriac.plugin import Config
from celeriac_redis import RedisConfig
from celeriac_redis._client import make_client
from celeriac_redis._urls import parse


def test_single_server_urls_pass_through() -> None:
    assert parse("redis://h:1/2").kind == "single"
    assert parse("redis+socket:///tmp/r.sock?db=1").url == "unix:///tmp/r.sock?db=1"


def test_sentinel_url_with_nodes_db_credentials_and_master() -> None:
    target = parse("redis+sentinel://u:p%40ss@h1:26380,h2/3?master_name=m")
    assert target.kind == "sentinel"
    assert target.nodes == (("h1", 26380), ("h2", 26379))
    assert (target.db, target.username, target.password, target.master_name) == (3, "u", "p@ss", "m")
    assert not target.tls
    assert parse("rediss+sentinel://h1?master_name=m").tls


def test_kombu_sentinel_list_takes_the_master_name_from_config() -> None:
    target = parse("sentinel://:secret@h1:26379/1;sentinel://h2:26379;", master_name="mymaster")
    assert target.nodes == (("h1", 26379), ("h2", 26379))
    assert (target.db, target.password, target.master_name) == (1, "secret", "mymaster")


def test_sentinel_without_master_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="master_name"):
        parse("redis+sentinel://h1:26379")


def test_mixed_schemes_and_bad_ports_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="every node"):
        parse("sentinel://h1;redis://h2", master_name="m")
    with pytest.raises(ConfigError, match="port"):
        parse("redis+cluster://h1:abc")
    with pytest.raises(ConfigError, match="database 0"):
        parse("redis+cluster://h1:7000/1")
    with pytest.raises(ConfigError, match="not a Redis URL"):
        parse("http://h1")


def test_cluster_url() -> None:
    target = parse("redis+cluster://:pw@h1:7000,h2:7001")
    assert (target.kind, target.nodes, target.password) == ("cluster", (("h1", 7000), ("h2", 7001)), "pw")


def test_kombu_layout_is_refused_on_a_cluster() -> None:
    config = Config(sections={"redis": RedisConfig(layout="kombu")})
    with pytest.raises(ConfigError, match="cannot run on Redis Cluster"):
        make_client("redis+cluster://127.0.0.1:7000", config.section("redis", RedisConfig))
