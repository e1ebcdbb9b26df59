"""The app's tables: the sales a report sums up, and the report jobs users ask for."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from report_app.extensions import db


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Sale(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    region: Mapped[str] = mapped_column(String(40))
    amount_cents: Mapped[int]


class ReportJob(db.Model):  # type: ignore[name-defined,misc]
    """One report a user asked for: queued, then built by a worker, then downloaded."""

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The id of the task building it, chosen before the job is stored so the row has it
    #: from the start and the worker always finds the row (the task is sent after the commit).
    task_id: Mapped[str] = mapped_column(String(64), unique=True)
    region: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued, building, done, failed
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)
    finished_at: Mapped[dt.datetime | None]
    #: Which process built it ("host:pid"), shown on the status page.
    built_by: Mapped[str | None] = mapped_column(String(255))
    content: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "region": self.region,
            "status": self.status,
            "built_by": self.built_by,
            "error": self.error,
        }
