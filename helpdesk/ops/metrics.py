"""Prometheus metrics at `/metrics`, readable only with `Authorization: Bearer $METRICS_TOKEN`.

Two kinds of figures:

- **per process**, summed over every gunicorn worker of a node through prometheus_client's
  multiprocess mode when `PROMETHEUS_MULTIPROC_DIR` is set (see `helpdesk/ops/gunicorn_conf.py`):
  `helpdesk_http_request_duration_seconds{method,route,status}` (route = the URL rule, never the
  path with ids), `helpdesk_tickets_created_total{channel}` (counted after the commit).
- **desk-wide**, read from PostgreSQL / Redis at scrape time (cached `METRICS_DESK_CACHE_SECONDS`,
  default 15 s): outbox backlog and oldest pending age, failed deliveries, failed RQ jobs per queue,
  open tickets past their SLA, login failures in the last 5 minutes. Every node reports the same
  value, so alert on `max(...)` across nodes, never `sum`.

Without `METRICS_TOKEN` the endpoint answers 404.
"""
from __future__ import annotations

import datetime as dt
import hmac
import os
import threading
import time

from flask import Blueprint, Response, abort, current_app, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from helpdesk.auth import public
from helpdesk import signals
from helpdesk.accounts.models import AuditLog
from helpdesk.extensions import csrf, db
from helpdesk.notify.models import Outbox
from helpdesk.tickets.models import Ticket

bp = Blueprint("ops_metrics", __name__)

REQUEST_SECONDS = Histogram(
    "helpdesk_http_request_duration_seconds", "Time to answer an HTTP request, by URL rule.",
    ["method", "route", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
TICKETS_CREATED = Counter("helpdesk_tickets_created_total", "Tickets created (committed), by channel.",
                          ["channel"])


# --- per-request timing ---------------------------------------------------------------------------

def _start_timer() -> None:
    g.hd_started = time.perf_counter()


def _observe(response):
    started = g.pop("hd_started", None)
    if started is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUEST_SECONDS.labels(request.method, rule, str(response.status_code)).observe(
            time.perf_counter() - started)
    return response


# --- tickets created, counted once their transaction commits -------------------------------------

def _ticket_created(session, ticket=None, **_kw) -> None:
    target = getattr(session, "info", None)
    if target is not None and ticket is not None:
        target.setdefault("hd_metrics_created", []).append(ticket.channel or "web")


def _after_commit(session) -> None:
    for channel in session.info.pop("hd_metrics_created", ()):
        TICKETS_CREATED.labels(channel).inc()


def _after_rollback(session) -> None:
    session.info.pop("hd_metrics_created", None)


# --- desk-wide figures read at scrape time ---------------------------------------------------------

class DeskCollector:
    """Gauges read from the database and Redis, cached per process for a few seconds."""

    def __init__(self, app):
        self.app = app
        self._lock = threading.Lock()
        self._cached: tuple[float, list] | None = None

    def collect(self):
        ttl = float(self.app.config.get("METRICS_DESK_CACHE_SECONDS", 15))
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= ttl:
                self._cached = (time.monotonic(), self._read())
            values = self._cached[1]
        for name, doc, labels, samples in values:
            family = GaugeMetricFamily(name, doc, labels=labels)
            for label_values, value in samples:
                family.add_metric(label_values, value)
            yield family

    def _read(self) -> list:
        now = dt.datetime.now(dt.timezone.utc)
        session = db.session
        pending, oldest = session.execute(select(func.count(Outbox.id), func.min(Outbox.created_at))
                                          .where(Outbox.state == "pending")).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.timezone.utc)
        failed = session.scalar(select(func.count(Outbox.id)).where(Outbox.state == "failed"))
        breached = session.scalar(select(func.count(Ticket.id)).where(
            Ticket.sla_state == "breached", Ticket.status.in_(("new", "open", "pending", "escalated"))))
        since = now - dt.timedelta(minutes=5)
        logins = dict(session.execute(select(AuditLog.action, func.count(AuditLog.id)).where(
            AuditLog.at >= since, AuditLog.action.in_(("login.failed", "login.refused")))
            .group_by(AuditLog.action)).all())
        session.rollback()  # scrape reads only; leave no transaction open
        out = [
            ("helpdesk_outbox_pending", "Outbox rows (mail, webhooks, tracker) waiting to be delivered.", [],
             [([], pending)]),
            ("helpdesk_outbox_oldest_pending_age_seconds", "Age of the oldest undelivered outbox row (0: none).",
             [], [([], (now - oldest).total_seconds() if oldest else 0.0)]),
            ("helpdesk_outbox_failed", "Outbox rows that gave up after their last attempt.", [], [([], failed)]),
            ("helpdesk_sla_breached_open_tickets", "Open tickets past a first-response or resolution due time.",
             [], [([], breached)]),
            ("helpdesk_login_failures_5m", "Failed or refused logins in the last 5 minutes.", ["reason"],
             [([action.split(".", 1)[1]], logins.get(action, 0)) for action in ("login.failed", "login.refused")]),
        ]
        out.append(("helpdesk_jobs_failed", "Jobs in RQ's failed-job registry, by queue.", ["queue"],
                    self._failed_jobs()))
        return out

    def _failed_jobs(self) -> list:
        if not self.app.config.get("REDIS_URL"):
            return []
        try:
            from rq import Queue
            from rq.registry import FailedJobRegistry

            from helpdesk.jobs import redis_connection

            connection = redis_connection()
            return [([name], FailedJobRegistry(queue=Queue(name, connection=connection)).count)
                    for name in ("default", "notify", "sla", "insights")]
        except Exception:  # Redis down: /healthz says so; the metrics page still answers
            return []


def registry_for(app) -> CollectorRegistry:
    """Per-process metrics (merged over the node's workers in multiprocess mode) + the desk gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_SECONDS)
        registry.register(TICKETS_CREATED)
    registry.register(app.extensions["hd_desk_collector"])
    return registry


@bp.get("/metrics")
@public
def metrics():
    """Prometheus text format; 404 unless METRICS_TOKEN is set and given as a bearer token."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    given = request.headers.get("Authorization", "")
    if not token:
        abort(404)
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response("metrics token required\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = generate_latest(registry_for(current_app._get_current_object()))
    return Response(body, mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


_listeners_installed = False


def init_app(app) -> None:
    global _listeners_installed
    app.config.setdefault("METRICS_TOKEN", os.environ.get("METRICS_TOKEN") or None)
    app.extensions["hd_desk_collector"] = DeskCollector(app)
    app.before_request(_start_timer)
    app.after_request(_observe)
    csrf.exempt(metrics)
    app.register_blueprint(bp)
    if not _listeners_installed:  # module-level: one set however many apps a process builds
        signals.ticket_created.connect(_ticket_created, weak=False)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
        _listeners_installed = True
