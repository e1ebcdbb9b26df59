import os

from celery import shared_task

from proj import db


@shared_task
def add(x, y):
    return x + y


@shared_task
def mul(x, y):
    return x * y


@shared_task
def xsum(numbers):
    return sum(numbers)


@shared_task(bind=True, max_retries=3)
def flaky(self, value):
    if self.request.retries < 2:
        raise self.retry(countdown=0.1)
    return [value, self.request.retries]


@shared_task
def whose_connection():
    return [os.getpid(), db.opened_by()]


@shared_task
def fail():
    raise ValueError("expected failure")
