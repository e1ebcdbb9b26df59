"""``celeriac migrate celery`` on real Celery apps: the TOML it prints, and that celeriac loads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac._beat.beat import load_entries
from celeriac._model.schedules import BeatConfig

from .conftest import Migrate
from .conftest import Project
from .conftest import Run

pytest.importorskip("celery")

CELERY_APP = """
from celery import Celery

app = Celery("proj", include=["proj.tasks"])
app.config_from_object("proj.celeryconfig")
"""
TASKS = """
from proj.celery import app


@app.task
def add(x, y):
    return x + y
"""
NEW_STYLE = """
from datetime import timedelta

from celery.schedules import crontab, solar
from kombu import Exchange, Queue

broker_url = "amqp://user:pa55word@rabbit.internal:5672/prod"
result_backend = "rpc://"
accept_content = ["json"]
task_compression = "gzip"
task_default_queue = "default"
task_queues = (
    Queue("default"),
    Queue("media", Exchange("media", type="topic"), routing_key="media.#"),
)
task_routes = {
    "proj.tasks.encode_*": {"queue": "media", "exchange": "media", "routing_key": "media.video"},
    "proj.tasks.report": {"queue": "default", "priority": 3},
    "proj.tasks.send_mail": "mail",
}
task_annotations = {
    "*": {"rate_limit": "100/s"},
    "proj.tasks.add": {"rate_limit": "10/s", "time_limit": 30, "max_retries": None},
}
task_time_limit = 300
task_soft_time_limit = 270
task_track_started = True
result_expires = timedelta(hours=6)
worker_concurrency = 4
worker_prefetch_multiplier = 3
worker_max_tasks_per_child = 100
worker_send_task_events = True
broker_heartbeat = 30
timezone = "Europe/Berlin"
beat_schedule = {
    "every-30s": {"task": "proj.tasks.add", "schedule": 30.0, "args": (2, 3)},
    "nightly": {
        "task": "proj.tasks.cleanup",
        "schedule": crontab(minute=30, hour=2),
        "options": {"queue": "default", "expires": 600},
    },
    "first-monday": {
        "task": "proj.tasks.report",
        "schedule": crontab(minute=0, hour=9, day_of_week="mon", day_of_month="1-7"),
    },
    "hourly": {"task": "proj.tasks.sync", "schedule": timedelta(hours=1), "kwargs": {"full": False}},
    "lights": {"task": "proj.tasks.lights", "schedule": solar("sunset", 52.52, 13.405)},
}
"""
OLD_STYLE = """
from datetime import timedelta

BROKER_URL = "redis://:s3cret@127.0.0.1:6379/0"
CELERY_RESULT_BACKEND = "redis://127.0.0.1:6379/1"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json", "msgpack"]
CELERYD_CONCURRENCY = 8
CELERYD_PREFETCH_MULTIPLIER = 1
CELERY_ACKS_LATE = False
CELERY_ROUTES = {"proj.tasks.add": {"queue": "math"}}
CELERY_ANNOTATIONS = {"proj.tasks.add": {"rate_limit": "10/s"}}
CELERYBEAT_SCHEDULE = {
    "sum": {"task": "proj.tasks.add", "schedule": timedelta(seconds=30), "args": (1, 2)},
}
BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7200, "global_keyprefix": "proj:"}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": "results:"}
CELERY_TIMEZONE = "UTC"
CELERYD_HIJACK_ROOT_LOGGER = False
"""


def load(run: Run) -> Celeriac:
    """The printed configuration in a celeriac app, as ``Celeriac(config=path)`` reads it."""
    assert run.code == 0, run.err
    return Celeriac("proj", config=run.path, env={})


def beat_entries(app: Celeriac) -> dict[str, Any]:
    return {entry.name: entry for entry in load_entries(app, app.config.section("beat", BeatConfig))}


def test_new_style_settings_from_config_from_object(project: Project, migrate: Migrate) -> None:
    project(celery=CELERY_APP, celeryconfig=NEW_STYLE, tasks=TASKS)
    run = migrate()
    app = load(run)
    config = app.config
    assert config.imports == ("proj.tasks",)
    assert config.broker == "amqp://user:**@rabbit.internal:5672/prod"  # no password printed
    assert "pa55word" not in run.out
    assert config.result_store == "rpc://"
    assert (config.compression, config.default_queue, config.result_expires) == ("gzip", "default", 21600)
    assert config.worker.pool == "prefork"  # Celery's default pool, said so
    assert config.worker.concurrency == 4
    assert config.worker.prefetch == 8  # 3 x 4 held, 4 of them running
    assert config.worker.queues == ("default", "media")  # a Celery worker consumes every task queue
    assert config.worker.send_events
    defaults = config.task_defaults
    assert (defaults.time_limit, defaults.soft_time_limit, defaults.track_started) == (300, 270, True)
    assert defaults.rate_limit == "100/s"
    add = config.tasks["proj.tasks.add"]
    assert (add.rate_limit, add.time_limit, add.max_retries) == ("10/s", 30, -1)
    assert config.tasks["proj.tasks.report"].priority == 3
    # Exact names before patterns: the order Celery's router looks them up in.
    assert list(config.task_routes) == ["proj.tasks.report", "proj.tasks.send_mail", "proj.tasks.encode_*"]
    assert config.task_routes["proj.tasks.send_mail"] == "mail"
    amqp = run.toml["amqp"]
    assert amqp["heartbeat"] == 30
    assert amqp["max_priority"] == 0  # Celery declares queues without x-max-priority
    media = {"exchange": "media", "exchange_type": "topic", "routing_key": "media.#"}
    assert amqp["queues"] == {"media": media}
    assert run.toml["prefork"] == {"max_tasks_per_child": 100}
    entries = beat_entries(app)
    assert run.toml["beat"]["timezone"] == "Europe/Berlin"
    assert entries["every-30s"].args == (2, 3)
    assert entries["nightly"].queue == "default"
    assert entries["nightly"].expires == 600
    # Celery's day-of-month AND day-of-week, kept by the keyword table.
    assert run.toml["beat"]["schedule"]["first-monday"]["cron"] == {
        "minute": 0,
        "hour": 9,
        "day_of_week": "mon",
        "day_of_month": "1-7",
    }
    assert entries["hourly"].kwargs == {"full": False}
    assert run.toml["beat"]["schedule"]["lights"]["solar"] == {
        "event": "sunset",
        "latitude": 52.52,
        "longitude": 13.405,
    }
    assert "broker_url; password hidden: set CELERIAC_BROKER" in run.out
    assert 'pip install "celeriac[amqp,compression,cron,events,json,prefork]"' in run.out
    assert "# acks_late = false  # Celery's default" in run.out


def test_old_style_uppercase_settings(project: Project, migrate: Migrate) -> None:
    project(celery=CELERY_APP.replace('include=["proj.tasks"]', ""), celeryconfig=OLD_STYLE)
    run = migrate("proj.celery")  # found as celery -A finds it: the module's `app`
    config = load(run).config
    assert config.broker == "redis://:**@127.0.0.1:6379/0"
    assert config.result_store == "redis://127.0.0.1:6379/1"
    assert config.accept == ("json", "msgpack")
    assert config.acks_late is False  # written out in Celery: carried over, not suggested
    assert (config.worker.concurrency, config.worker.prefetch) == (8, 1)
    assert config.visibility_timeout == 7200
    assert config.task_routes == {"proj.tasks.add": "math"}
    assert config.tasks["proj.tasks.add"].rate_limit == "10/s"
    redis = run.toml["redis"]
    assert redis == {"layout": "kombu", "kombu_global_keyprefix": "proj:", "result_key_prefix": "results:"}
    assert run.toml["beat"]["schedule"]["sum"] == {"task": "proj.tasks.add", "every": 30, "args": [1, 2]}
    assert "worker_hijack_root_logger = False" in run.out
    assert "celeriac worker sets up logging from -l only" in run.out


def test_namespaced_settings_and_sqlite(project: Project, migrate: Migrate) -> None:
    """Django's way: config_from_object(..., namespace="CELERY")."""
    project(
        celery="""
        from celery import Celery


        class Settings:
            CELERY_BROKER_URL = "sqla+sqlite:///celery.db"
            CELERY_RESULT_BACKEND = "db+sqlite:///results.db"
            CELERY_TASK_ALWAYS_EAGER = True
            CELERY_WORKER_POOL = "threads"
            DEBUG = True  # not a Celery setting: left alone


        app = Celery("proj")
        app.config_from_object(Settings, namespace="CELERY")
        """
    )
    run = migrate()
    config = load(run).config
    assert config.broker == "sqlite:///celery.db"
    assert config.result_store == "sqlite:///results.db"
    assert config.task_always_eager
    assert config.worker.pool == "threads"
    assert "# task_eager_propagates = false  # Celery's default" in run.out
    assert "DEBUG" not in run.out


def test_an_app_with_no_settings_keeps_celerys_defaults(project: Project, migrate: Migrate) -> None:
    project(celery='from celery import Celery\n\napp = Celery("proj")\n')
    run = migrate()
    config = load(run).config
    assert config.broker == "amqp://guest:guest@localhost:5672//"
    assert config.result_store == ""  # no result backend: results off, as in Celery
    assert config.worker.pool == "prefork"
    assert run.toml["amqp"] == {"max_priority": 0}
    assert "Every Celery setting this app sets has a celeriac equivalent above." in run.out
    # The suggestion, uncommented, is valid and turns early acknowledgement on.
    run.path.write_text(run.out.replace("# acks_late = false", "acks_late = false"))
    assert Celeriac("proj", config=run.path, env={}).config.acks_late is False


def test_periodic_tasks_added_in_signal_handlers(project: Project, migrate: Migrate) -> None:
    project(
        celery="""
        from celery import Celery
        from celery.schedules import crontab

        app = Celery("proj", broker="redis://127.0.0.1:6379/0")


        @app.on_after_configure.connect
        def setup_periodic_tasks(sender, **kwargs):
            sender.add_periodic_task(10.0, ping.s("hello"), name="ping every 10")
            sender.add_periodic_task(crontab(hour=7, minute=30, day_of_week=1), ping.s("monday"))


        @app.task
        def ping(word):
            return word
        """
    )
    run = migrate()
    entries = beat_entries(load(run))
    assert entries["ping every 10"].args == ("hello",)
    assert entries["ping every 10"].task == "proj.celery.ping"
    monday = run.toml["beat"]["schedule"]["proj.celery.ping('monday')"]
    assert monday["cron"] == {"minute": 30, "hour": 7, "day_of_week": 1}


def test_passwords_only_with_with_secrets(project: Project, migrate: Migrate) -> None:
    project(
        celery="""
        from celery import Celery

        app = Celery("proj", broker="redis://:hunter2@127.0.0.1:6379/0", backend="redis://:hunter2@127.0.0.1/1")
        app.conf.broker_transport_options = {"sentinel_kwargs": {"password": "hunter3"}}
        """
    )
    masked = migrate()
    assert "hunter" not in masked.out
    assert "set CELERIAC_RESULT_STORE" in masked.out
    shown = migrate("proj.celery:app", "--with-secrets")
    assert shown.toml["broker"] == "redis://:hunter2@127.0.0.1:6379/0"
    assert shown.toml["result_store"] == "redis://:hunter2@127.0.0.1/1"
    assert load(shown).config.broker == "redis://:hunter2@127.0.0.1:6379/0"


def test_settings_without_equivalent_are_listed_with_the_reason(project: Project, migrate: Migrate) -> None:
    project(
        celery="""
        from celery import Celery

        app = Celery("proj")
        app.conf.update(
            broker_url="kafka://scott:tiger@localhost:9092",
            result_backend="mongodb://scott:tiger@localhost/results",
            result_extended=True,
            broker_pool_limit=5,
            beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
            database_engine_options={"echo": True},
            worker_pool="custom",
            task_routes=[lambda name, args, kwargs, options, task=None, **kw: None],
            task_compression="brotli",
        )
        """
    )
    run = migrate()
    config = load(run).config
    assert "broker" not in run.toml  # no Kafka transport: the default applies, and the note says so
    assert "tiger" not in run.out
    report = run.out.split("Not carried over:")[1]
    for setting, why in [
        ("broker_url = 'kafka://scott:**@localhost:9092'", "celeriac has no transport for kafka://"),
        (
            "result_backend = 'mongodb://scott:**@localhost/results'",
            "no result store for mongodb://",
        ),
        ("result_extended = True", "results keep Celery's basic layout"),
        ("broker_pool_limit = 5", "no pool limit"),
        ("beat_scheduler = ", "celeriac beat schedule add/remove"),
        ("database_engine_options = ", "Celery's SQLAlchemy result backend"),
        ("worker_pool = 'custom'", "celeriac pools are plugins"),
        ("task_routes = <function", "a router function"),
        ("task_compression = 'brotli'", "celeriac-compression has zlib"),
    ]:
        assert setting in report, setting
        assert why in report.split(setting)[1].split("\n#\n")[0], why
    assert config.compression is None


@pytest.mark.parametrize(
    ("celery_settings", "expected", "sections"),
    [
        (
            'broker_url="sqs://KEY:SECRET@", result_backend="db+postgresql://scott:tiger@localhost/results"',
            {"broker": "sqs://", "result_store": "db+postgresql://scott:**@localhost/results"},
            {},
        ),
        (
            'result_backend="cache+memcached://127.0.0.1:11211/"',
            {"result_store": "memcached://127.0.0.1:11211/"},
            {},
        ),
        ('result_backend="file:///var/results"', {"result_store": "file:///var/results"}, {}),
        (
            'result_backend="s3://", s3_bucket="bkt", s3_base_path="/celery/", s3_region="eu-west-1"',
            {"result_store": "s3://bkt/celery"},
            {"s3": {"region": "eu-west-1"}},
        ),
        (
            'result_backend="gs://bkt/res?gcs_project=proj-1"',
            {"result_store": "gs://bkt/res"},
            {"gcs": {"project": "proj-1"}},
        ),
        (
            'result_backend="dynamodb://@localhost:8000/results"',
            {"result_store": "dynamodb://results"},
            {"dynamodb": {"endpoint_url": "http://localhost:8000"}},
        ),
        (
            'result_backend="azureblockblob://UseDevelopmentStorage=true", '
            'azureblockblob_container_name="res"',
            {"result_store": "azureblob://res"},
            {"azureblob": {"connection_string": "**"}},
        ),
        (
            'result_backend="couchdb://scott:tiger@couch:5984/results"',
            {"result_store": "couchdb://scott:**@couch:5984/results"},
            {},
        ),
    ],
)
def test_the_sqs_broker_and_the_plugin_result_stores_carry_over(
    project: Project,
    migrate: Migrate,
    celery_settings: str,
    expected: dict[str, str],
    sections: dict[str, Any],
) -> None:
    project(
        celery=f"""
        from celery import Celery

        app = Celery("proj")
        app.conf.update({celery_settings})
        """
    )
    run = migrate()
    for key, value in expected.items():
        assert run.toml[key] == value, run.out
    for section, values in sections.items():
        assert {k: run.toml[section][k] for k in values} == values, run.out
    assert "no result store for" not in run.out and "no transport for" not in run.out
    assert "s3_bucket" not in run.out.split("Not carried over:")[-1] or "Not carried over:" not in run.out


def test_signing_settings_load_with_real_keys(project: Project, migrate: Migrate, tmp_path: Path) -> None:
    key, certificate = _key_pair(tmp_path)
    project(
        celery=f"""
        from celery import Celery

        app = Celery("proj", broker="redis://127.0.0.1:6379/0")
        app.conf.update(
            security_key={str(key)!r},
            security_certificate={str(certificate)!r},
            security_cert_store={str(tmp_path / "*.pem")!r},
            security_digest="sha256",
            task_serializer="auth",
            accept_content=["auth"],
        )
        """
    )
    run = migrate()
    config = load(run).config
    assert (config.serializer, config.accept) == ("auth", ("auth",))
    assert run.toml["signing"] == {
        "key": str(key),
        "certificate": str(certificate),
        "trusted": [str(certificate)],  # the glob's files (the folder holds other files too)
        "digest": "sha256",
    }
    assert "celeriac[cron" not in run.out and "signing" in run.out.splitlines()[5]


def test_a_missing_app_is_one_clear_error(project: Project, migrate: Migrate) -> None:
    project(celery="raise ImportError('no module named kombu_extra')\n")
    run = migrate()
    assert run.code == 2
    error = "error: cannot import the Celery app 'proj.celery:app': ImportError: no module named kombu_extra"
    assert error in run.err
    assert migrate("proj.nothing_here:app").code == 2
    project(celery="import os\n\nBROKER = os.environ['BROKER']\n")
    run = migrate()
    assert (run.code, run.err.strip()) == (
        2,
        "error: cannot import the Celery app 'proj.celery:app': KeyError: 'BROKER'",
    )


def _key_pair(directory: Path) -> tuple[Path, Path]:
    """An RSA key and its self-signed certificate, as Celery's security docs make them."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proj")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    key_path, cert_path = directory / "worker.key", directory / "worker.pem"
    key_path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
