"""The report task: run by a worker, inside the Flask app's context (db.session works here)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import socket

from flask import current_app
from sqlalchemy import func
from sqlalchemy import select

from report_app.extensions import celeriac
from report_app.extensions import db
from report_app.models import ReportJob
from report_app.models import Sale


@celeriac.task
def build_report(job_id: int) -> int:
    """Sum the sales by region into a CSV kept on the job, and mark the job done; a report that
    cannot be built marks its job failed, with the reason the user sees when polling.

    Returns the number of rows in the report.
    """
    job = db.session.get(ReportJob, job_id)
    if job is None:
        raise LookupError(f"no report job {job_id}")
    job.status = "building"
    job.built_by = f"{socket.gethostname()}:{os.getpid()}"
    db.session.commit()
    try:
        content, rows = _sales_csv(job.region)
    except Exception as exc:
        db.session.rollback()
        job.status, job.error = "failed", str(exc)
        job.finished_at = dt.datetime.now(dt.UTC)
        db.session.commit()
        raise
    job.content = content
    job.status = "done"
    job.finished_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    current_app.logger.info("report %s built: %d rows", job_id, rows)
    return rows


def _sales_csv(region: str | None) -> tuple[str, int]:
    query = select(Sale.region, func.count(), func.sum(Sale.amount_cents)).group_by(Sale.region)
    if region is not None:
        query = query.where(Sale.region == region)
    rows = db.session.execute(query.order_by(Sale.region)).all()
    if not rows:
        raise ValueError(f"no sales to report in region {region!r}" if region else "no sales to report")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["region", "sales", "total"])
    for name, count, cents in rows:
        writer.writerow([name, count, f"{cents / 100:.2f}"])
    return out.getvalue(), len(rows)
