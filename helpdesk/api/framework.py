"""The small layer every API operation goes through, and the registry the OpenAPI document is built from.

`operation(...)` declares one endpoint: its path, scope, request model (pydantic, validating the JSON
body), query parameters and responses. The same declaration authenticates the bearer token, checks
the scope, enforces the body size, parses JSON, validates it, handles Idempotency-Key, commits once
on success and rolls back on any error (nothing is written when the answer is an error), and is
what `openapi.build_document()` turns into the OpenAPI 3.1 document.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Callable

from flask import current_app, g, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from helpdesk.api import bp, service
from helpdesk.api.models import IdempotencyRecord
from helpdesk.extensions import db
from helpdesk.security import client_ip

from helpdesk.tickets import service as tickets_service

logger = logging.getLogger(__name__)

_TICKET_ERRORS = {
    tickets_service.NotFound: (404, "not-found"),
    tickets_service.VersionConflict: (409, "version-conflict"),
    tickets_service.InvalidTransition: (409, "invalid-transition"),
}

_STALE_DETAIL = "このチケットは他の担当者が更新しました。最新の内容を確認してから保存してください。"
PROBLEM_BASE = "https://helpdesk.example.jp/problems/"
DEFAULT_MAX_BODY = 64 * 1024

_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
    412: "Precondition Failed", 413: "Content Too Large", 415: "Unsupported Media Type",
    422: "Unprocessable Content", 429: "Too Many Requests", 503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answer as problem details."""

    def __init__(self, status: int, kind: str, detail: str, errors: dict[str, list[str]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.errors = errors
        self.headers = headers or {}


def unknown_reference(exc) -> ApiError:
    """422 for a named user / organisation that does not exist (tickets.requesters.UnknownReference)."""
    return ApiError(422, "unknown-reference", str(exc),
                    {field: [str(m) for m in messages] for field, messages in exc.field_errors.items()})


def problem(status: int, kind: str, detail: str, errors: dict | None = None, headers: dict | None = None):
    body: dict[str, Any] = {"type": PROBLEM_BASE + kind, "title": _TITLES.get(status, "Error"),
                            "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    body["instance"] = request.path
    return body, status, {"Content-Type": "application/problem+json", **(headers or {})}


@dataclass
class Param:
    name: str
    schema: dict
    description: str = ""
    location: str = "query"
    required: bool = False
    explode: bool | None = None


@dataclass
class Operation:
    method: str
    rule: str
    endpoint: str
    summary: str
    tag: str
    scope: str
    body: type[BaseModel] | None
    params: list[Param]
    responses: dict[int, tuple[type[BaseModel] | None, str]]
    errors: tuple[int, ...]
    description: str = ""
    idempotent: bool = False
    extra: dict = field(default_factory=dict)


OPERATIONS: list[Operation] = []


@dataclass
class Reply:
    """What a view returns: status, a pydantic model (or dict), and headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def _token_from_header() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return value.strip()


def rate_limit_key() -> str:
    """Rate-limit bucket: the token (by a hash of it, no DB look-up), or the client address without one."""
    token = _token_from_header()
    if token:
        return "api-token:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return "api-ip:" + client_ip()


_REFUSALS = {
    "missing": "認証が必要です。Authorization: Bearer <APIトークン> を付けて送信してください。",
    "unknown": "APIトークンが正しくありません。",
    "revoked": "このAPIトークンは無効化（失効）されています。管理者に新しいトークンを依頼してください。",
    "expired": "このAPIトークンは有効期限が切れています。管理者に新しいトークンを依頼してください。",
    "user_disabled": "このAPIトークンに紐づく利用者は無効化されています。",
}


def current_user_():
    return g.api_user


def actor():
    return service.token_actor(g.api_token, client_ip())


def _authenticate(scope: str) -> None:
    try:
        token = service.authenticate_token(db.session, _token_from_header())
    except service.TokenRefused as exc:
        raise ApiError(401, "unauthorized", _REFUSALS.get(exc.reason, _REFUSALS["unknown"]),
                       headers={"WWW-Authenticate": 'Bearer realm="helpdesk"'
                                + ("" if exc.reason == "missing" else ', error="invalid_token"')})
    if not token.allows(scope):
        raise ApiError(403, "insufficient-scope",
                       f"このAPIトークンには「{scope}」の権限がありません（持っている権限: {token.scopes}）。")
    g.api_token, g.api_user = token, token.user


def _read_json() -> tuple[Any, bytes]:
    limit = current_app.config.get("API_MAX_BODY_BYTES", DEFAULT_MAX_BODY)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body-too-large", f"リクエスト本文が大きすぎます（上限 {limit:,} バイト）。")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, "body-too-large", f"リクエスト本文が大きすぎます（上限 {limit:,} バイト）。")
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported-media-type", "Content-Type: application/json で送信してください。")
    import json

    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid-json", "本文が UTF-8 ではありません。")
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid-json", f"本文の JSON を読み取れません（{exc.msg}、{exc.lineno}行 {exc.colno}文字目）。")
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid-json", "本文の JSON を読み取れません（入れ子が深すぎるか、数値が大きすぎます）。")
    if not isinstance(data, dict):
        raise ApiError(400, "invalid-json", "本文は JSON オブジェクト（{...}）で送信してください。")
    if _depth(data) > 20:
        raise ApiError(400, "invalid-json", "本文の JSON の入れ子が深すぎます（20段まで）。")
    return data, raw


def _depth(value, level: int = 1) -> int:
    if level > 20:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] or [level])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] or [level])
    return level


_MESSAGES = {
    "extra_forbidden": "この項目は受け付けていません（項目名を確認してください）。",
    "missing": "必須項目です。",
    "string_type": "文字列で指定してください。",
    "int_type": "整数で指定してください。",
    "bool_type": "true または false で指定してください。",
    "list_type": "配列で指定してください。",
    "dict_type": "オブジェクトで指定してください。",
    "literal_error": "選べる値: {expected}",
    "string_too_short": "{min_length}文字以上で入力してください。",
    "string_too_long": "{max_length}文字以内で入力してください。",
    "too_long": "{max_length}件以内にしてください。",
    "string_pattern_mismatch": "形式が正しくありません。",
    "greater_than_equal": "{ge}以上の数にしてください。",
    "value_error": "{error}",
    "string_unicode": "不正な文字（サロゲート）が含まれています。",
}


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        template = _MESSAGES.get(err["type"])
        try:
            message = template.format(**(err.get("ctx") or {})) if template else err["msg"]
        except (KeyError, IndexError):
            message = err["msg"]
        out.setdefault(loc, []).append(message)
    return out


def validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "validation", "入力内容に誤りがあります。errors の各項目を確認してください。",
                       field_errors(exc))


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200 or any(ord(c) < 0x21 or ord(c) > 0x7e for c in key):
        raise ApiError(400, "idempotency-key", "Idempotency-Key は1〜200文字の英数字・記号で指定してください。",
                       {"Idempotency-Key": ["1〜200文字の英数字・記号で指定してください。"]})
    return key


def _serialise(reply: Reply) -> tuple[Any, int, dict]:
    body = reply.body
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return body, reply.status, reply.headers


def _replay(record: IdempotencyRecord):
    headers = {"Idempotent-Replayed": "true"}
    if record.location:
        headers["Location"] = record.location
    return record.body, record.status, headers


def operation(method: str, rule: str, *, summary: str, tag: str, scope: str = "read",
              body: type[BaseModel] | None = None, params: list[Param] | None = None,
              responses: dict[int, tuple[type[BaseModel] | None, str]], errors: tuple[int, ...] = (),
              description: str = "", idempotent: bool = False):
    """Declare and register an API operation on the `api` blueprint (see module docstring)."""

    def decorator(view: Callable[..., Reply]):
        endpoint = view.__name__

        @wraps(view)
        def wrapped(**kwargs):
            try:
                _authenticate(scope)
                key = _idempotency_key() if (method == "POST" and idempotent) else None
                if body is not None:
                    data, _raw = _read_json()
                    if key is not None:
                        req_hash = service.request_hash(method, request.path, data)
                        record = service.find_idempotent(db.session, g.api_token.id, key)
                        if record is not None:
                            if record.request_hash != req_hash:
                                raise ApiError(422, "idempotency-mismatch",
                                               "この Idempotency-Key は別の内容のリクエストで使われています。"
                                               "新しいキーで送信してください。")
                            return _replay(record)
                    kwargs["payload"] = validate(body, data)
                touch = service.needs_touch(g.api_token)
                token_id = g.api_token.id
                reply = view(**kwargs)
                out = _serialise(reply)
                if method != "GET":
                    if key is not None:
                        db.session.add(IdempotencyRecord(token_id=g.api_token.id, key=key, request_hash=req_hash,
                                                         status=out[1], body=out[0],
                                                         location=out[2].get("Location")))
                    try:
                        db.session.commit()
                    except IntegrityError:
                        db.session.rollback()
                        record = service.find_idempotent(db.session, g.api_token.id, key) if key else None
                        if record is None:
                            raise
                        # A concurrent request with the same key won: answer what it answered.
                        return _replay(record)
                if touch:  # only after a successful answer: an error writes nothing at all
                    service.touch_token(db.session, token_id, client_ip())
                return out
            except ApiError as exc:
                db.session.rollback()
                return problem(exc.status, exc.kind, exc.detail, exc.errors, exc.headers)
            except tickets_service.TicketError as exc:
                db.session.rollback()
                status, kind = _TICKET_ERRORS.get(type(exc), (422, "ticket-refused"))
                return problem(status, kind, str(exc))
            except StaleDataError:
                # Two writes against the same version raced and this one lost at the UPDATE: a conflict,
                # answered like a version mismatch found earlier.
                db.session.rollback()
                return problem(409, "version-conflict", _STALE_DETAIL)
            except Exception:
                db.session.rollback()
                raise

        wrapped.api_scope = scope
        wrapped.api_token_auth = True
        bp.add_url_rule(rule, endpoint=endpoint, view_func=wrapped, methods=[method])
        OPERATIONS.append(Operation(method=method, rule=rule, endpoint=endpoint, summary=summary, tag=tag,
                                    scope=scope, body=body, params=list(params or []), responses=responses,
                                    errors=errors, description=description or (view.__doc__ or "").strip(),
                                    idempotent=idempotent))
        return wrapped

    return decorator
