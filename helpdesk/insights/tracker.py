"""Send a problem's evidence to the development tracker: an outbox webhook signed with HMAC-SHA256.

The payload is shaped like a GitHub issue (`title`, `body`, `labels`) plus a `helpdesk` object
with the evidence as JSON. The row is written to the outbox (kind webhook, purpose "tracker") in the
same transaction as the status change, and `deliver(outbox_id)` posts it. We deliver it ourselves
rather than through the generic webhook sender because the tracker's answer (its issue key/URL)
must be read back; both claim rows with the same atomic lease, so a row is never sent twice at once,
and the signature header and secret reference are the platform's (`X-Helpdesk-Signature`,
`config:TRACKER_WEBHOOK_SECRET`), so either sender produces the same request:

    POST TRACKER_WEBHOOK_URL
    Content-Type: application/json
    X-Helpdesk-Event: problem.sent
    X-Helpdesk-Delivery: <outbox id>          (the same on every retry: receivers de-duplicate on it)
    X-Helpdesk-Signature: sha256=<hex HMAC-SHA256 of the raw body with TRACKER_WEBHOOK_SECRET>

A 2xx answer ends it (the returned `key`/`number`/`id` and `url`/`html_url` become the problem's
external reference); anything else is retried with exponential backoff until `max_attempts`.
Every attempt is written to the delivery log (`delivery_attempts`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request

from sqlalchemy import select, update

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.insights import service
from helpdesk.insights.models import Problem

logger = logging.getLogger(__name__)

PURPOSE = "tracker"
SECRET_REF = "config:TRACKER_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Helpdesk-Signature"
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
LEASE_SECONDS = 120
TIMEOUT_SECONDS = 10


class TrackerNotConfigured(service.InsightsError):
    pass


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header)


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0)))


def payload(session, problem_id: int) -> dict:
    pack = service.evidence(session, problem_id)
    problem = service.get_problem(session, problem_id)
    labels = ["helpdesk", "recurring-issue"] + sorted(f"role:{r}" for r in pack["by_role"])
    return {"title": f"[{problem.ref}] {problem.title}", "body": service.evidence_markdown(pack),
            "labels": labels, "helpdesk": {"problem_id": problem.id, "ref": problem.ref, "evidence": pack}}


def send_problem(session, problem_id: int, actor: Actor, *, url: str | None, secret: str | None,
                 expected_version: int | None = None):
    """Mark an accepted problem as sent and queue the webhook (one commit); returns the outbox row."""
    from helpdesk.notify.models import Outbox

    if not url or not secret:
        raise TrackerNotConfigured("開発トラッカーの送信先（TRACKER_WEBHOOK_URL / TRACKER_WEBHOOK_SECRET）が設定されていません。")
    problem = service.get_problem(session, problem_id)
    if problem.status != "accepted":
        raise service.InvalidTransition("開発トラッカーへ送れるのは「受理済み」の問題だけです。")
    body = payload(session, problem_id)
    previous = session.scalar(select(Outbox.id).where(Outbox.object_ref == f"problem:{problem.id}",
                                                      Outbox.purpose == PURPOSE).order_by(Outbox.id.desc()).limit(1))
    dedupe_key = f"tracker:problem:{problem.id}:{(previous or 0) + 1}"
    row = None
    if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)) is None:
        row = Outbox(kind="webhook", recipient=url, payload=body, purpose=PURPOSE, headers={"secret_ref": SECRET_REF},
                     object_ref=f"problem:{problem.id}", dedupe_key=dedupe_key)
        session.add(row)
    service.transition_problem(session, problem.id, "sent", actor, expected_version=expected_version, commit=False)
    audit.record(session, actor, "problem.sent_to_tracker", "problem", problem.id,
                 {"outbox_id": row.id if row else None, "url": url})
    session.flush()
    if row is not None:
        from helpdesk import jobs

        jobs.enqueue_after_commit(session, "helpdesk.insights.jobs.deliver_tracker", row.id, queue="notify")
    session.commit()
    return row


def _claim(session, outbox_id: int):
    """Take the row for this worker (pending and due, or a dead worker's expired lease)."""
    from helpdesk.notify.models import Outbox

    now = utcnow()
    claimed = session.execute(
        update(Outbox)
        .where(Outbox.id == outbox_id, Outbox.purpose == PURPOSE, Outbox.next_attempt_at <= now,
               (Outbox.state == "pending") | ((Outbox.state == "sending") & (Outbox.lease_until < now)))
        .values(state="sending", lease_until=now + dt.timedelta(seconds=LEASE_SECONDS))
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return session.get(Outbox, outbox_id) if claimed else None


def _extract_ref(data) -> tuple[str | None, str | None]:
    if not isinstance(data, dict):
        return None, None
    key = next((str(data[k]) for k in ("key", "number", "id", "issue_key") if data.get(k) not in (None, "")), None)
    url = next((str(data[k]) for k in ("html_url", "url", "self", "browse_url") if data.get(k)), None)
    return (key[:100] if key else None), (url[:500] if url else None)


def deliver(session, outbox_id: int, *, secret: str | None) -> str:
    """One delivery attempt of a tracker webhook; returns the row's state afterwards."""
    from helpdesk.notify.models import DeliveryAttempt

    row = _claim(session, outbox_id)
    if row is None:
        return "skipped"  # sent already, not due yet, or another worker has it: no duplicate
    body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "vds-helpdesk/1",
               "X-Helpdesk-Event": "problem.sent", "X-Helpdesk-Delivery": str(row.id)}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    started = time.perf_counter()
    status, error, data = None, None, None
    try:
        request = urllib.request.Request(row.recipient, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (configured URL)
            status = response.status
            raw = response.read(65536)
        try:
            data = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            data = None
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    took = int((time.perf_counter() - started) * 1000)
    ok = status is not None and 200 <= status < 300 and error is None
    session.add(DeliveryAttempt(outbox_id=row.id, ok=ok, status_code=status, error=error, duration_ms=took))
    row.attempts = (row.attempts or 0) + 1
    row.lease_until = None
    if ok:
        row.state, row.sent_at, row.response, row.last_error = "sent", utcnow(), data if isinstance(data, dict) else None, None
        _store_ref(session, row)
    else:
        row.last_error = error or f"HTTP {status}"
        if row.attempts >= (row.max_attempts or 8):
            row.state = "failed"
        else:
            row.state = "pending"
            row.next_attempt_at = utcnow() + backoff(row.attempts)
    session.commit()
    return row.state


def _store_ref(session, row) -> None:
    if not row.object_ref or not row.object_ref.startswith("problem:"):
        return
    problem = session.get(Problem, int(row.object_ref.split(":", 1)[1]))
    key, url = _extract_ref(row.response)
    if problem is not None and (key or url):
        problem.external_ref, problem.external_url = key, url
        audit.record(session, Actor.system("tracker"), "problem.external_ref", "problem", problem.id,
                     {"external_ref": key, "external_url": url})


def sync_refs(session, problem_id: int) -> None:
    """Copy the tracker's answer onto the problem if another worker (notify) delivered the row."""
    from helpdesk.notify.models import Outbox

    problem = service.get_problem(session, problem_id)
    if problem.external_ref:
        return
    row = session.scalars(select(Outbox).where(Outbox.object_ref == f"problem:{problem_id}", Outbox.purpose == PURPOSE,
                                               Outbox.state == "sent").order_by(Outbox.id.desc()).limit(1)).first()
    if row is not None and row.response:
        _store_ref(session, row)
        session.commit()


def due_ids(session) -> list[int]:
    from helpdesk.notify.models import Outbox

    now = utcnow()
    return list(session.scalars(select(Outbox.id).where(
        Outbox.purpose == PURPOSE, Outbox.next_attempt_at <= now,
        (Outbox.state == "pending") | ((Outbox.state == "sending") & (Outbox.lease_until < now))).order_by(Outbox.id)))


def delivery_log(session, problem_id: int) -> list:
    from helpdesk.notify.models import DeliveryAttempt, Outbox

    return session.execute(select(Outbox, DeliveryAttempt).outerjoin(DeliveryAttempt, DeliveryAttempt.outbox_id == Outbox.id)
                           .where(Outbox.object_ref == f"problem:{problem_id}", Outbox.purpose == PURPOSE)
                           .order_by(Outbox.id.desc(), DeliveryAttempt.id.desc())).all()
