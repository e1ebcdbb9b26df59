from __future__ import annotations

from django.db import models


class Order(models.Model):
    name = models.CharField(max_length=100)


class Shipped(models.Model):
    """Written by the task ``ship``: one row per run, so a second run shows."""

    order_name = models.CharField(max_length=100)
