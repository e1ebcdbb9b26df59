from django.db import models


class Order(models.Model):
    name = models.CharField(max_length=100)
    task_id = models.CharField(max_length=255, blank=True, default="")
    fulfilled = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class Fulfilment(models.Model):
    """One row per run of the task ``fulfil``: a second run of one order would show here."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fulfilments")
    worker_pid = models.IntegerField()
