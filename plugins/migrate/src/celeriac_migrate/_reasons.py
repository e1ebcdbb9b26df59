"""Why a Celery setting has no celeriac equivalent, and what to do instead."""

from __future__ import annotations

_LOGGING = "celeriac worker sets up logging from -l only; configure your handlers in code"
_RECONNECT = (
    "celeriac's transports reconnect with back-off by themselves "
    "([redis] retry_attempts, retry_backoff_*; [amqp] connection_attempts, retry_backoff_*)"
)
_STORE_RETRY = "result store retries are the plugin's ([redis] retry_attempts, retry_backoff_*)"
_WORKER_INTERNALS = "an internal of Celery's worker; celeriac's worker is built from its own bootsteps"
_SOFT_SHUTDOWN = (
    "celeriac's warm shutdown lets running tasks finish; [worker] shutdown_timeout bounds it, "
    "then the shutdown turns cold and unfinished messages are given back"
)
_EXCHANGES = (
    'tasks without a route go to default_queue; name exchanges per task ([tasks."name"] exchange, '
    "routing_key) or in [task_routes]"
)
_AMQP_RESULTS = "for Celery's AMQP/RPC results; celeriac's rpc:// replies are always transient"

#: Settings of Celery's result backends celeriac has a store for, by prefix: the store's own
#: settings (its section) replace them.
_OWN_SETTINGS = {
    "database_": ("SQLAlchemy", "celeriac-sqlalchemy: [sqlalchemy] settings and the db+ URL"),
    "cache_": ("cache (memcached)", "celeriac-memcached: [memcached] settings and the URL"),
    "s3_": ("S3", "celeriac-s3: [s3] settings and the s3:// URL"),
    "azureblockblob_": ("Azure Block Blob", "celeriac-azureblob: [azureblob] settings and the URL"),
    "gcs_": ("Google Cloud Storage", "celeriac-gcs: [gcs] settings and the gs:// URL"),
    "couchdb_": ("CouchDB", "celeriac-couchdb: [couchdb] settings and the URL"),
    "dynamodb_": ("DynamoDB", "celeriac-dynamodb: [dynamodb] settings and the URL"),
}

#: Settings of Celery's result backends celeriac has no store for, by prefix.
_BACKENDS = {
    "cassandra_": "Cassandra",
    "mongodb_": "MongoDB",
    "elasticsearch_": "Elasticsearch",
    "couchbase_": "Couchbase",
    "arangodb_": "ArangoDB",
    "cosmosdbsql_": "Cosmos DB",
}

REASONS: dict[str, str] = {
    "broker_connection_retry": _RECONNECT,
    "broker_connection_retry_on_startup": _RECONNECT,
    "broker_connection_max_retries": _RECONNECT,
    "broker_channel_error_retry": _RECONNECT,
    "broker_failover_strategy": "celeriac connects to one broker URL; use Sentinel or Cluster URLs on Redis",
    "broker_heartbeat_checkrate": "[amqp] heartbeat is enough: the connection checks heartbeats itself",
    "broker_login_method": "celeriac-amqp logs in with the URL's user and password (PLAIN)",
    "broker_pool_limit": "celeriac keeps a few connections per app and has no pool limit",
    "broker_pool_acquire_timeout": "celeriac keeps a few connections per app and has no pool limit",
    "broker_native_delayed_delivery_queue_type": "celeriac-amqp delays messages in its own delay queues",
    "broker_transport": "the URL's scheme picks the transport",
    "result_extended": "results keep Celery's basic layout (status, result, traceback, children)",
    "result_persistent": _AMQP_RESULTS,
    "result_exchange": _AMQP_RESULTS,
    "result_exchange_type": _AMQP_RESULTS,
    "result_cache_max": "AsyncResult keeps no client-side cache",
    "result_chord_join_timeout": "chords count their parts in the result store; no join to time out",
    "result_chord_retry_interval": "chords count their parts in the result store; nothing is polled",
    "result_chord_expires": "chord counters expire with result_expires",
    "result_backend_always_retry": _STORE_RETRY,
    "result_backend_max_retries": _STORE_RETRY,
    "result_backend_base_sleep_between_retries_ms": _STORE_RETRY,
    "result_backend_max_sleep_between_retries_ms": _STORE_RETRY,
    "result_compression": "results are stored uncompressed",
    "result_failure_expires": "one result_expires for results of every state",
    "redis_retry_on_timeout": _STORE_RETRY,
    "redis_username": "give the result backend as a URL (result_backend)",
    "redis_password": "give the result backend as a URL (result_backend)",
    "redis_host": "give the result backend as a URL (result_backend)",
    "redis_port": "give the result backend as a URL (result_backend)",
    "redis_db": "give the result backend as a URL (result_backend)",
    "task_protocol": "celeriac sends Celery's protocol 2 (and reads protocol 1)",
    "task_publish_retry": "publishing is retried by the transport after a lost connection",
    "task_publish_retry_policy": "publishing is retried by the transport after a lost connection",
    "task_remote_tracebacks": "the stored traceback is text; AsyncResult.traceback shows it",
    "task_repr_maxlevels": "argsrepr and kwargsrepr are cut by length",
    "task_store_errors_even_if_ignored": "an ignored result stores nothing, failures included",
    "task_store_eager_result": "eager runs store nothing",
    "task_create_missing_queues": "celeriac declares every queue it publishes to or consumes",
    "task_create_missing_queue_exchange_type": "queues celeriac creates are bound to the default exchange",
    "task_default_exchange": _EXCHANGES,
    "task_default_exchange_type": _EXCHANGES,
    "task_default_routing_key": _EXCHANGES,
    "task_default_delivery_mode": "task messages are always persistent",
    "task_inherit_parent_priority": "give the priority when sending, or as the task's option",
    "task_allow_error_cb_on_chord_header": "errbacks of a chord's header tasks are not called for the header",
    "task_acks_on_failure": "celeriac has one option for both: acks_on_failure_or_timeout ([task_defaults])",
    "task_acks_on_timeout": "celeriac has one option for both: acks_on_failure_or_timeout ([task_defaults])",
    "task_retry_on_worker_lost": "reject_on_worker_lost requeues a late-acked task whose process died",
    "worker_agent": _WORKER_INTERNALS,
    "worker_consumer": _WORKER_INTERNALS,
    "worker_timer": _WORKER_INTERNALS,
    "worker_timer_precision": _WORKER_INTERNALS,
    "worker_lost_wait": _WORKER_INTERNALS,
    "worker_proc_alive_timeout": _WORKER_INTERNALS,
    "worker_pool_putlocks": _WORKER_INTERNALS,
    "worker_pool_restarts": "no pool_restart remote-control command in this version",
    "worker_autoscaler": '[prefork] autoscale = "MAX,MIN" takes the bounds; custom autoscalers have none',
    "worker_direct": "workers have no queue of their own; route to a queue only that worker consumes",
    "worker_disable_rate_limits": 'rate limits always apply; remove them from the tasks ([tasks."name"])',
    "worker_enable_remote_control": "remote control is always on",
    "worker_hijack_root_logger": _LOGGING,
    "worker_log_color": _LOGGING,
    "worker_log_format": _LOGGING,
    "worker_log_datefmt": _LOGGING,
    "worker_task_log_format": _LOGGING,
    "worker_task_log_datefmt": _LOGGING,
    "worker_redirect_stdouts": _LOGGING,
    "worker_redirect_stdouts_level": _LOGGING,
    "worker_cancel_long_running_tasks_on_connection_loss": (
        "running tasks go on; a late-acked message whose lease is lost comes back to another worker"
    ),
    "worker_deduplicate_successful_tasks": "no deduplication: make tasks idempotent (at-least-once delivery)",
    "worker_enable_prefetch_count_reduction": "[worker] prefetch is a fixed count",
    "worker_eta_task_limit": "delayed tasks wait in the broker, never in the worker",
    "worker_detect_quorum_queues": "[amqp] queue_type says whether queues are quorum queues",
    "worker_soft_shutdown_timeout": _SOFT_SHUTDOWN,
    "worker_enable_soft_shutdown_on_idle": _SOFT_SHUTDOWN,
    "beat_scheduler": (
        "beat keeps its entries in [beat] schedule_store; `celeriac beat schedule add/remove` "
        "edits them while beat runs (django-celery-beat's database scheduler has no equivalent)"
    ),
    "beat_schedule_filename": "beat keeps last runs in [beat] schedule_store (SQLite or Redis)",
    "beat_sync_every": "last runs are written at every run",
    "beat_cron_starting_deadline": "[beat] grace and missed decide what happens to late runs",
    "beat_enable_remote_control": "beat answers no remote-control commands",
    "beat_remote_control_max_tick_age": "beat answers no remote-control commands",
    "enable_utc": "celeriac keeps times in UTC; [beat] timezone is the zone of cron and solar entries",
    "event_exchange": "celeriac-events sends events on the broker's fan-out, with Celery's names",
    "event_queue_ttl": "event receivers' queues are celeriac-events' own",
    "event_queue_expires": "event receivers' queues are celeriac-events' own",
    "event_queue_prefix": "event receivers' queues are celeriac-events' own",
    "event_queue_durable": "event receivers' queues are celeriac-events' own",
    "event_queue_exclusive": "event receivers' queues are celeriac-events' own",
    "event_serializer": "events are JSON",
    "control_queue_ttl": "celeriac's remote control needs no settings",
    "control_queue_expires": "celeriac's remote control needs no settings",
    "control_exchange": "celeriac's remote control needs no settings",
    "control_queue_durable": "celeriac's remote control needs no settings",
    "control_queue_exclusive": "celeriac's remote control needs no settings",
}


def reason(setting: str) -> str:
    """Why ``setting`` is not carried over."""
    if setting in REASONS:
        return REASONS[setting]
    for prefix, (backend, instead) in _OWN_SETTINGS.items():
        if setting.startswith(prefix):
            return f"a setting of Celery's {backend} result backend with no counterpart in {instead}"
    for prefix, backend in _BACKENDS.items():
        if setting.startswith(prefix):
            return f"a setting of Celery's {backend} result backend; celeriac has no such result store"
    return "no celeriac equivalent"
