from celery import chain
from celery import chord
from celery import group

from proj.tasks import add
from proj.tasks import mul
from proj.tasks import xsum


def sum_of_doubles(n):
    return chord(group(add.s(i, i) for i in range(n)), xsum.s()).apply_async()


def add_then_multiply(x, y, z):
    return chain(add.s(x, y), mul.s(z)).apply_async()


def squares(numbers):
    return group(mul.s(n, n) for n in numbers).apply_async()
