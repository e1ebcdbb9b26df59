"""The HTTP side: ask for a report (answered at once with the task id), poll it, download it."""

from __future__ import annotations

import uuid

from flask import Blueprint
from flask import Response
from flask import abort
from flask import jsonify
from flask import request
from flask import url_for

from report_app.extensions import db
from report_app.models import ReportJob
from report_app.tasks import build_report

reports = Blueprint("reports", __name__, url_prefix="/reports")


@reports.post("")
def ask_for_report() -> tuple[Response, int]:
    region = (request.get_json(silent=True) or {}).get("region")
    job = ReportJob(task_id=str(uuid.uuid4()), region=region, status="queued")
    db.session.add(job)
    # Committed before the task is sent: a worker quick off the mark finds the row.
    db.session.commit()
    try:
        build_report.apply_async((job.id,), task_id=job.task_id)
    except Exception as exc:
        job.status, job.error = "failed", f"not queued: {exc}"
        db.session.commit()
        raise
    body = job.as_dict() | {"url": url_for("reports.report_status", job_id=job.id)}
    return jsonify(body), 202


@reports.get("/<int:job_id>")
def report_status(job_id: int) -> Response:
    job = db.get_or_404(ReportJob, job_id)
    body = job.as_dict()
    if job.status == "done":
        body["download"] = url_for("reports.download_report", job_id=job.id)
    return jsonify(body)


@reports.get("/<int:job_id>/download")
def download_report(job_id: int) -> Response:
    job = db.get_or_404(ReportJob, job_id)
    if job.status != "done" or job.content is None:
        abort(409, description=f"report {job_id} is {job.status}")
    return Response(
        job.content,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="report-{job_id}.csv"'},
    )
