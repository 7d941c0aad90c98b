"""API domain logic: tokens, idempotency, webhook subscriptions, help requests, serialisation.

Plain functions taking a session, values and an explicit actor; nothing here reads `request`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, or_, select, update

from helpdesk import audit
from helpdesk.accounts.models import Organisation, User
from helpdesk.api.models import SCOPES, WEBHOOK_EVENTS, ApiToken, IdempotencyRecord, WebhookSubscription
from helpdesk.api.webhooks import UnsafeURL, check_url
from helpdesk.audit import Actor
from helpdesk.common import TOKYO, utcnow
from helpdesk.lookup_cache import LookupCache, attach, column_values, link_loaded, ttl_seconds
from helpdesk.text import clean_input
from helpdesk.notify.models import Outbox
from helpdesk.notify.service import queue_webhook

TOKEN_PREFIX = "hd_"
#: last_used_at is written at most once per this interval (avoids a write on every request).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class ApiServiceError(Exception):
    """A refused operation; `field_errors` maps an input name to messages."""

    def __init__(self, message: str, field_errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.field_errors = field_errors or {}


# --- tokens ------------------------------------------------------------------------------------

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class CreatedToken:
    token: ApiToken
    #: The secret, shown once; only its hash is stored.
    plaintext: str


def create_token(session, *, name: str, user_email: str, scopes: list[str] | str, actor: Actor,
                 expires_at: dt.datetime | None = None, expires_in_days: int | None = None) -> CreatedToken:
    name = clean_input(name, 100)
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = [_l("名前を入力してください（例: VDS本番連携）。")]
    elif session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        errors["name"] = [_l("名前「%(name)s」のトークンは既にあります。別の名前にしてください。", name=name)]
    scope_list = scopes.split() if isinstance(scopes, str) else list(scopes)
    scope_list = list(dict.fromkeys(s.strip() for s in scope_list if s and s.strip()))
    bad = [s for s in scope_list if s not in SCOPES]
    if not scope_list:
        errors["scopes"] = [_l("権限（スコープ）を1つ以上選んでください。")]
    elif bad:
        errors["scopes"] = [_l("スコープ「%(scope)s」はありません（%(allowed)s）。", scope=bad[0], allowed=", ".join(SCOPES))]
    user = session.scalar(select(User).where(User.email == (user_email or "").strip().lower()))
    if user is None:
        errors["user"] = [_l("利用者「%(email)s」が見つかりません。", email=user_email)]
    elif not user.is_active:
        errors["user"] = [_l("無効化された利用者にはトークンを発行できません。")]
    if expires_at is None and expires_in_days:
        if expires_in_days < 1 or expires_in_days > 3650:
            errors["expires_in_days"] = [_l("有効期限は1〜3650日で指定してください。")]
        else:
            expires_at = utcnow() + dt.timedelta(days=expires_in_days)
    if expires_at is not None and expires_at.tzinfo is None:
        errors["expires_at"] = [_l("有効期限にはタイムゾーンが必要です。")]
    if errors:
        raise ApiServiceError(_l("トークンを作成できませんでした。"), errors)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, prefix=plaintext[:11], token_hash=hash_token(plaintext),
                     scopes=" ".join(scope_list), user_id=user.id, created_by_id=actor.user_id,
                     expires_at=expires_at)
    session.add(token)
    session.flush()
    audit.record(session, actor, "api.token_create", "api_token", token.id,
                 {"name": name, "user": user.email, "scopes": scope_list,
                  "expires_at": expires_at.isoformat() if expires_at else None})
    session.commit()
    return CreatedToken(token, plaintext)


def revoke_token(session, token_id: int, actor: Actor) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise ApiServiceError(_l("トークンが見つかりません。"))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor, "api.token_revoke", "api_token", token.id, {"name": token.name})
        session.commit()
    return token


class TokenRefused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def authenticate_token(session, plaintext: str, now: dt.datetime | None = None) -> ApiToken:
    """The active token for `plaintext`; TokenRefused(missing|unknown|revoked|expired|user_disabled)."""
    if not plaintext:
        raise TokenRefused("missing")
    if len(plaintext) > 200 or not plaintext.startswith(TOKEN_PREFIX):
        raise TokenRefused("unknown")
    token = _token_by_hash(session, hash_token(plaintext))
    if token is None:
        raise TokenRefused("unknown")
    now = now or utcnow()
    state = token.state(now)
    if state != "active":
        raise TokenRefused(state)
    if token.user is None or not token.user.is_active:
        raise TokenRefused("user_disabled")
    return token


# Token, user and organisation rows behind a token hash, cached per process (plain column values). A change
# made in this process (revoke, disable, role change) applies at once; one made in another process within
# LOOKUP_CACHE_SECONDS (5 s by default), like the other lookup caches.
_TOKENS = LookupCache("api-tokens", lambda: (ApiToken, User, Organisation))


def _token_query(session, token_hash: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


def _load_token(session, token_hash: str):
    token = _token_query(session, token_hash)
    if token is None:
        return None
    user = token.user
    org = user.organisation if user is not None else None
    return (column_values(token), column_values(user) if user is not None else None,
            column_values(org) if org is not None else None)


def _token_by_hash(session, token_hash: str) -> ApiToken | None:
    if ttl_seconds() <= 0:
        return _token_query(session, token_hash)
    rows = _TOKENS.get(session, token_hash, lambda: _load_token(session, token_hash), keep_none=False)
    if rows is None:
        return None
    token_values, user_values, org_values = rows
    org = attach(session, Organisation, org_values) if org_values is not None else None
    user = attach(session, User, user_values) if user_values is not None else None
    token = attach(session, ApiToken, token_values)
    # The many-to-one links as loaded (no lazy load of what is attached right here).
    if user is not None:
        link_loaded(user, "organisation", org)
    link_loaded(token, "user", user)
    return token


def needs_touch(token: ApiToken, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION


def touch_token(session, token_id: int, ip: str | None = None, now: dt.datetime | None = None) -> None:
    """Record the last use, at most once a minute (conditional update: concurrent requests write once)."""
    now = now or utcnow()
    session.execute(update(ApiToken).where(
        ApiToken.id == token_id,
        or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_RESOLUTION))
        .values(last_used_at=now, last_used_ip=ip).execution_options(synchronize_session=False))
    session.commit()


def token_actor(token: ApiToken, ip: str | None = None) -> Actor:
    return Actor(token.user_id, f"api:{token.name}", ip)


def list_tokens(session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.name)))


# --- idempotency -------------------------------------------------------------------------------

def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def find_idempotent(session, token_id: int, key: str) -> IdempotencyRecord | None:
    return session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.token_id == token_id,
                                                          IdempotencyRecord.key == key))


def purge_idempotency(session, older_than: dt.timedelta = dt.timedelta(days=7)) -> int:
    from sqlalchemy import delete

    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - older_than))
    session.commit()
    return result.rowcount or 0


# --- webhook subscriptions ---------------------------------------------------------------------

def _events(events) -> list[str]:
    items = events.split() if isinstance(events, str) else list(events or [])
    return list(dict.fromkeys(e.strip() for e in items if e and e.strip()))


def create_subscription(session, *, name: str, url: str, events, actor: Actor, allowed_hosts=(),
                        resolver=None, description: str | None = None) -> WebhookSubscription:
    errors: dict[str, list[str]] = {}
    name = clean_input(name, 100)
    if not name:
        errors["name"] = [_l("名前を入力してください（例: 開発課題管理）。")]
    url = (url or "").strip()
    try:
        check_url(url, allowed_hosts, resolver)
    except UnsafeURL as exc:
        errors["url"] = [str(exc)]
    event_list = _events(events)
    bad = [e for e in event_list if e not in WEBHOOK_EVENTS]
    if not event_list:
        errors["events"] = [_l("通知するイベントを1つ以上選んでください。")]
    elif bad:
        errors["events"] = [_l("イベント「%(event)s」はありません（%(allowed)s）。", event=bad[0],
                                    allowed=", ".join(WEBHOOK_EVENTS))]
    if errors:
        raise ApiServiceError(_l("Webhookを登録できませんでした。"), errors)
    sub = WebhookSubscription(name=name, url=url, secret=secrets.token_hex(32), events=" ".join(event_list),
                              active=True, created_by_id=actor.user_id,
                              description=clean_input(description, 2000) or None)
    session.add(sub)
    session.flush()
    audit.record(session, actor, "api.webhook_create", "webhook_subscription", sub.id,
                 {"name": name, "url": url, "events": event_list})
    session.commit()
    return sub


def set_subscription_active(session, sub_id: int, active: bool, actor: Actor) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, sub_id)
    if sub is None:
        raise ApiServiceError(_l("Webhookが見つかりません。"))
    if sub.active != active:
        sub.active = active
        audit.record(session, actor, "api.webhook_enable" if active else "api.webhook_disable",
                     "webhook_subscription", sub.id, {"name": sub.name})
        session.commit()
    return sub


@dataclass(frozen=True)
class ActiveSubscription:
    """What queueing an event needs of a subscription (plain values: kept in the lookup cache)."""
    id: int
    url: str
    secret_ref: str | None
    events: frozenset[str]


_SUBSCRIPTIONS = LookupCache("webhook-subscriptions", lambda: (WebhookSubscription,))


def _active_subscriptions(session) -> tuple[ActiveSubscription, ...]:
    # No autoflush: the caller's pending rows are flushed once, at its commit, not for this look-up.
    with session.no_autoflush:
        subs = session.scalars(select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
                               .order_by(WebhookSubscription.id)).all()
    return tuple(ActiveSubscription(s.id, s.url, s.secret_ref, frozenset(s.event_set)) for s in subs)


def subscriptions_for(session, event: str) -> list[ActiveSubscription]:
    """Active subscriptions to `event` (per-process lookup cache: a new one applies within seconds)."""
    return [s for s in _SUBSCRIPTIONS.get(session, "active", lambda: _active_subscriptions(session))
            if event in s.events]


def deliveries(session, sub: WebhookSubscription, limit: int = 50):
    from sqlalchemy.orm import selectinload

    return list(session.scalars(
        select(Outbox).where(Outbox.object_ref == f"subscription:{sub.id}")
        .options(selectinload(Outbox.attempt_log)).order_by(Outbox.id.desc()).limit(limit)))


def queue_event(session, event: str, data: dict, *, key: str, ticket_id: int | None = None,
                now: dt.datetime | None = None) -> int:
    """Queue `event` for every active subscription to it (same transaction as the change).

    `key` identifies the occurrence (e.g. the TicketEvent id) so a repeat queues nothing.
    Returns how many deliveries were queued.
    """
    count = 0
    occurred = (now or utcnow()).astimezone(TOKYO).isoformat(timespec="seconds")
    for sub in subscriptions_for(session, event):
        payload = {"event": event, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sub.id}:{event}:{key}")),
                   "occurred_at": occurred, "data": data}
        row = queue_webhook(session, url=sub.url, payload=payload, purpose=f"webhook:{event}",
                            secret_ref=sub.secret_ref, object_ref=f"subscription:{sub.id}", ticket_id=ticket_id,
                            dedupe_key=f"wh:{sub.id}:{event}:{key}"[:200])
        if row is not None:  # queue_webhook hands the row to the delivery workers after the commit
            count += 1
    return count


# --- organisations and users -------------------------------------------------------------------

def visible_org_clause(user: User):
    """Organisations `user` may look up: all for staff; own (+ clinics under a municipality) otherwise."""
    if user.is_staff:
        return None
    if user.organisation_id is None:
        return Organisation.id == -1
    clause = Organisation.id == user.organisation_id
    if user.org_kind == "municipality":
        clause = or_(clause, Organisation.parent_id == user.organisation_id)
    return clause


def visible_user_clause(user: User):
    if user.is_staff:
        return None
    if user.organisation_id is None:
        return User.id == user.id
    org_ids = select(Organisation.id).where(visible_org_clause(user))
    return User.organisation_id.in_(org_ids)


def activation_counts(session, org_ids: list[int]) -> dict[int, dict[str, int]]:
    now = utcnow()
    out = {oid: {"invited": 0, "activated": 0, "disabled": 0, "locked": 0} for oid in org_ids}
    if not org_ids:
        return out
    locked = case((User.locked_at.is_not(None) & (User.locked_until.is_(None) | (User.locked_until > now)), 1),
                  else_=0)
    rows = session.execute(select(User.organisation_id, User.state, func.count(), func.sum(locked))
                           .where(User.organisation_id.in_(org_ids))
                           .group_by(User.organisation_id, User.state))
    for org_id, state, n, n_locked in rows:
        out[org_id][state] = int(n)
        out[org_id]["locked"] += int(n_locked or 0)
    return out


def phone_digits(value: str) -> str:
    import unicodedata

    return "".join(ch for ch in unicodedata.normalize("NFKC", value or "") if ch.isdigit())
