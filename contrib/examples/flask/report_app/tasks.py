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


@celeriac.task(max_retries=3)
def build_report(job_id: int) -> int:
    """Sum the sales by region into a CSV kept on the job, and mark the job done.

    Returns the number of rows in the report.
    """
    job = db.session.get(ReportJob, job_id)
    if job is None:
        raise LookupError(f"no report job {job_id}")
    job.status = "building"
    job.built_by = f"{socket.gethostname()}:{os.getpid()}"
    db.session.commit()
    query = select(Sale.region, func.count(), func.sum(Sale.amount_cents)).group_by(Sale.region)
    if job.region is not None:
        query = query.where(Sale.region == job.region)
    rows = db.session.execute(query.order_by(Sale.region)).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["region", "sales", "total"])
    for region, count, cents in rows:
        writer.writerow([region, count, f"{cents / 100:.2f}"])
    job.content = out.getvalue()
    job.status = "done"
    job.finished_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    current_app.logger.info("report %s built: %d rows", job_id, len(rows))
    return len(rows)
