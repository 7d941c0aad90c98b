"""Send a problem's evidence to the development tracker: an outbox webhook signed with HMAC-SHA256.

The payload is shaped like a GitHub issue (`title`, `body`, `labels`) plus a `helpdesk` object
with the evidence as JSON. The row is written to the outbox (kind webhook, purpose "tracker") in the
same transaction as the status change. The outbox dispatcher (`helpdesk.notify.jobs`) routes every
tracker row to this module's sender — through the job after the commit, the sweep and the retry
button alike — because the tracker's answer (its issue key/URL) must be read back: it claims, signs
(`X-Helpdesk-Signature`, secret `config:TRACKER_WEBHOOK_SECRET`), logs and retries as for any row:

    POST TRACKER_WEBHOOK_URL
    Content-Type: application/json
    X-Helpdesk-Event: problem.sent
    X-Helpdesk-Delivery: <outbox id>          (the same on every retry: receivers de-duplicate on it)
    X-Helpdesk-Signature: sha256=<hex HMAC-SHA256 of the raw body with TRACKER_WEBHOOK_SECRET>

A 2xx answer ends it (the returned `key`/`number`/`id` and `url`/`html_url` become the problem's
external reference, `store_ref`); anything else is retried with exponential backoff until `max_attempts`.
Every attempt is written to the delivery log (`delivery_attempts`).
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from helpdesk import audit
from helpdesk.api.webhooks import SIGNATURE_HEADER, sign, verify  # noqa: F401  (the platform's signature)
from helpdesk.audit import Actor
from helpdesk.insights import service
from helpdesk.insights.models import Problem
from helpdesk.notify.models import DeliveryAttempt, Outbox
from helpdesk.notify.service import queue_webhook

logger = logging.getLogger(__name__)

PURPOSE = "tracker"
SECRET_REF = "config:TRACKER_WEBHOOK_SECRET"
EVENT = "problem.sent"
#: Retries of a tracker that is down wait up to 1 h (the dispatcher's backoff, capped here).
BACKOFF_CAP_SECONDS = 3600
TIMEOUT_SECONDS = 10


#: Shown to people instead of the send button / on a refused send: no environment-variable names.
NOT_CONFIGURED = "開発トラッカーとの連携が設定されていません。管理者に連絡してください。"


class TrackerNotConfigured(service.InsightsError):
    pass


def configured(config) -> bool:
    """True when sending can work: the tracker URL and its signing secret are both set."""
    return bool(config.get("TRACKER_WEBHOOK_URL") and config.get("TRACKER_WEBHOOK_SECRET"))


def payload(session, problem_id: int) -> dict:
    pack = service.evidence(session, problem_id)
    problem = service.get_problem(session, problem_id)
    labels = ["helpdesk", "recurring-issue"] + sorted(f"role:{r}" for r in pack["by_role"])
    return {"title": f"[{problem.ref}] {problem.title}", "body": service.evidence_markdown(pack),
            "labels": labels, "helpdesk": {"problem_id": problem.id, "ref": problem.ref, "evidence": pack}}


def send_problem(session, problem_id: int, actor: Actor, *, url: str | None, secret: str | None,
                 expected_version: int | None = None):
    """Mark an accepted problem as sent and queue the tracker row (one commit); returns the outbox row."""
    if not url or not secret:
        raise TrackerNotConfigured(NOT_CONFIGURED)
    problem = service.get_problem(session, problem_id)
    if problem.status != "accepted":
        raise service.InvalidTransition(_l("開発トラッカーへ送れるのは「受理済み」の問題だけです。"))
    body = payload(session, problem_id)
    previous = session.scalar(select(Outbox.id).where(Outbox.object_ref == f"problem:{problem.id}",
                                                      Outbox.purpose == PURPOSE).order_by(Outbox.id.desc()).limit(1))
    # Delivered by the outbox dispatcher after the commit (tracker sender: it stores the issue key).
    row = queue_webhook(session, url=url, payload=body, purpose=PURPOSE, secret_ref=SECRET_REF,
                        object_ref=f"problem:{problem.id}",
                        dedupe_key=f"tracker:problem:{problem.id}:{(previous or 0) + 1}")
    service.transition_problem(session, problem.id, "sent", actor, expected_version=expected_version, commit=False,
                               sending=True)
    audit.record(session, actor, "problem.sent_to_tracker", "problem", problem.id,
                 {"outbox_id": row.id if row else None, "url": url})
    session.commit()
    return row


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, dict | None, str | None]:
    """POST the signed body to the configured tracker URL; (status, JSON answer, error)."""
    status, error, data = None, None, None
    try:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
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
    if error is None and not (status is not None and 200 <= status < 300):
        error = f"HTTP {status}"
    return status, (data if isinstance(data, dict) else None), error


def _extract_ref(data) -> tuple[str | None, str | None]:
    if not isinstance(data, dict):
        return None, None
    key = next((str(data[k]) for k in ("key", "number", "id", "issue_key") if data.get(k) not in (None, "")), None)
    url = next((str(data[k]) for k in ("html_url", "url", "self", "browse_url") if data.get(k)), None)
    return (key[:100] if key else None), (url[:500] if url else None)


def store_ref(session, row) -> None:
    """After a 2xx answer (in the dispatcher's recording transaction): the issue key/URL onto the problem."""
    if not row.object_ref or not row.object_ref.startswith("problem:"):
        return
    problem = session.get(Problem, int(row.object_ref.split(":", 1)[1]))
    key, url = _extract_ref(row.response)
    if problem is not None and (key or url):
        problem.external_ref, problem.external_url = key, url
        audit.record(session, Actor.system("tracker"), "problem.external_ref", "problem", problem.id,
                     {"external_ref": key, "external_url": url})


def delivery_log(session, problem_id: int) -> list:
    return session.execute(select(Outbox, DeliveryAttempt).outerjoin(DeliveryAttempt, DeliveryAttempt.outbox_id == Outbox.id)
                           .where(Outbox.object_ref == f"problem:{problem_id}", Outbox.purpose == PURPOSE)
                           .order_by(Outbox.id.desc(), DeliveryAttempt.id.desc())).all()
