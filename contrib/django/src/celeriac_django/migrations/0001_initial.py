# Made by `manage.py makemigrations celeriac_django` (Django 5.2).

from django.db import migrations
from django.db import models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="OutboxMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("task_id", models.CharField(max_length=255, unique=True)),
                ("task_name", models.CharField(db_index=True, max_length=255)),
                ("args", models.JSONField(default=list)),
                ("kwargs", models.JSONField(default=dict)),
                ("options", models.JSONField(default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("claimed_by", models.CharField(blank=True, default="", max_length=64)),
                ("claimed_at", models.DateTimeField(blank=True, null=True)),
                ("sent_at", models.DateTimeField(blank=True, db_index=True, null=True)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("last_error", models.TextField(blank=True, default="")),
            ],
            options={
                "verbose_name": "outbox message",
                "db_table": "celeriac_outbox",
                "ordering": ("id",),
            },
        ),
        migrations.CreateModel(
            name="TaskResult",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("task_id", models.CharField(max_length=255, unique=True)),
                ("status", models.CharField(db_index=True, max_length=50)),
                ("task_name", models.CharField(blank=True, db_index=True, default="", max_length=255)),
                ("worker", models.CharField(blank=True, default="", max_length=255)),
                ("content_type", models.CharField(max_length=128)),
                ("content_encoding", models.CharField(max_length=64)),
                ("payload", models.BinaryField()),
                ("result", models.TextField(blank=True, default="")),
                ("traceback", models.TextField(blank=True, default="")),
                ("date_created", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("date_done", models.DateTimeField(auto_now=True, db_index=True)),
            ],
            options={
                "verbose_name": "task result",
                "db_table": "celeriac_taskresult",
                "ordering": ("-date_done",),
            },
        ),
    ]
