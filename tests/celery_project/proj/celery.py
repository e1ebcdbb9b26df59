import logging
import os

from celery import Celery
from celery.signals import setup_logging
from celery.signals import task_failure
from celery.signals import worker_process_init

from proj import db

app = Celery(
    "proj",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0"),
    backend=os.environ.get("CELERY_RESULT_BACKEND", "redis://localhost:6379/1"),
    include=["proj.tasks"],
)


@setup_logging.connect
def configure_logging(loglevel=None, **kwargs):
    # The project's own logging: the worker leaves it alone when a receiver is connected.
    logging.basicConfig(level=loglevel or "INFO", format="proj-log %(levelname)s %(name)s: %(message)s")


@worker_process_init.connect
def open_database(**kwargs):
    # Connections must not cross a fork: each pool child opens its own.
    db.connect(os.environ["PROJ_DATABASE"])


@task_failure.connect
def report_failure(sender=None, task_id=None, exception=None, **kwargs):
    logging.getLogger("proj.failures").error("task %s failed: %r", task_id, exception)
