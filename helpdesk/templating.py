"""Jinja filters and globals: Tokyo times, navigation by role, labels."""
from __future__ import annotations

import datetime as dt

from flask import Flask, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from helpdesk.common import TOKYO
from helpdesk.vocabulary import Channel, OrgKind, Status, UserRole, labels

STATUS_LABELS = labels(Status)
#: An organisation's kind, and a manual article's audience ("common": every role).
ROLE_LABELS = {**labels(OrgKind), "common": _l("共通")}
CHANNEL_LABELS = labels(Channel)
#: Where a reply or note came from: a channel, or an automation rule's internal note.
COMMENT_VIA_LABELS = {**CHANNEL_LABELS, "automation": _l("自動ルール（システム）")}
USER_ROLE_LABELS = labels(UserRole)

#: (endpoint, label, roles allowed; empty = any signed-in user)
NAV = [
    ("tickets.portal", _l("お問い合わせ"), ("requester",)),
    ("tickets.queue", _l("キュー"), ("agent", "specialist", "supervisor", "admin")),
    ("tickets.intake", _l("電話受付"), ("agent", "specialist", "supervisor", "admin")),
    ("manuals.index", _l("マニュアル"), ()),
    ("insights.index", _l("分析"), ("product_owner", "supervisor", "admin")),
    ("reports.monthly", _l("月次報告"), ("product_owner", "supervisor", "admin")),
    ("accounts.users", _l("利用者検索"), ("agent", "specialist", "supervisor", "admin")),
    ("manuals.analytics", _l("マニュアル分析"), ("product_owner", "supervisor", "admin")),
    ("accounts.activation", _l("利用開始状況"), ("supervisor", "admin")),
    ("sla.policies", _l("SLA設定"), ("supervisor", "admin")),
    ("notify.failed", _l("送信失敗"), ("supervisor", "admin")),
    ("accounts.admin_home", _l("管理"), ("admin",)),
]


#: the administrator's pages, one menu shown on each of them (endpoint, label)
ADMIN_MENU = [
    ("accounts.admin_home", _l("管理トップ")),
    ("accounts.users", _l("利用者")),
    ("accounts.admin_import", _l("一括登録")),
    ("accounts.admin_organisations", _l("組織")),
    ("accounts.activation", _l("利用開始状況")),
    ("api_admin.tokens", _l("APIトークン")),
    ("api_admin.webhooks", _l("Webhook")),
    ("notify.failed", _l("送信失敗")),
    ("sla.policies", _l("SLA設定")),
    ("tickets.custom_fields", _l("追加項目")),
    ("accounts.admin_audit", _l("監査ログ")),
]
#: pages that carry the admin menu (endpoint prefixes), and header items an admin finds in that menu instead
_ADMIN_PAGES = ("accounts.admin_", "accounts.activation", "accounts.user", "api_admin.", "notify.", "sla.",
                "tickets.custom_field")
_ACTIVE_WITH = {"accounts.users": ("accounts.user_", "accounts.admin_user"),
                "accounts.admin_organisations": ("accounts.admin_organisation",),
                "accounts.admin_import": ("accounts.admin_import", "accounts.admin_upload_"),
                "api_admin.tokens": ("api_admin.revoke_token",), "api_admin.webhooks": ("api_admin.webhook",),
                "notify.": ("notify.",), "notify.failed": ("notify.",), "sla.policies": ("sla.",),
                "tickets.custom_fields": ("tickets.custom_field",)}
_IN_ADMIN_MENU = frozenset({"accounts.activation", "sla.policies", "notify.failed"})


def admin_menu() -> list[tuple[str, str, bool]]:
    """The admin menu for an administrator on an admin page; empty elsewhere."""
    endpoint = request.endpoint or ""
    if not (current_user.is_authenticated and current_user.has_role("admin") and endpoint.startswith(_ADMIN_PAGES)):
        return []
    items = []
    for name, label in ADMIN_MENU:
        try:
            url = url_for(name)
        except Exception:  # a domain not installed
            continue
        items.append((url, str(label), endpoint == name or endpoint.startswith(_ACTIVE_WITH.get(name, (name,)))))
    return items


def tokyo(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(TOKYO).strftime(fmt)


def hours_minutes(minutes) -> str:
    """A duration in minutes as words: 480 → "8時間", 90 → "1時間30分", 45 → "45分" (None → "—")."""
    if minutes is None or minutes == "":
        return "—"
    total = int(round(float(minutes)))
    hours, rest = divmod(abs(total), 60)
    sign = "-" if total < 0 else ""
    if hours and rest:
        return sign + str(_l("%(h)s時間%(m)s分", h=hours, m=rest))
    if hours:
        return sign + str(_l("%(h)s時間", h=hours))
    return sign + str(_l("%(m)s分", m=rest))


def iso(value: dt.datetime | None) -> str:
    return value.astimezone(TOKYO).isoformat() if value else ""


def nav_items() -> list[tuple[str, str, bool]]:
    if not current_user.is_authenticated:
        return [(url_for("manuals.index"), str(_l("マニュアル")), (request.endpoint or "").startswith("manuals."))]
    items = []
    for endpoint, label, roles in NAV:
        if roles and not current_user.has_role(*roles):
            continue
        if endpoint in _IN_ADMIN_MENU and current_user.has_role("admin"):
            continue  # in the admin menu: keeps the header on one line
        try:
            url = url_for(endpoint)
        except Exception:  # a domain that has not built this page yet
            continue
        items.append((url, str(label), (request.endpoint or "").split(".")[0] == endpoint.split(".")[0]
                      and (request.endpoint == endpoint or endpoint.endswith(".index"))))
    return items


def init_app(app: Flask) -> None:
    app.jinja_env.filters["tokyo"] = tokyo
    app.jinja_env.filters["iso"] = iso
    app.jinja_env.filters["hours_minutes"] = hours_minutes
    app.jinja_env.globals.update(
        nav_items=nav_items, admin_menu=admin_menu, STATUS_LABELS=STATUS_LABELS, ROLE_LABELS=ROLE_LABELS,
        CHANNEL_LABELS=CHANNEL_LABELS, COMMENT_VIA_LABELS=COMMENT_VIA_LABELS, USER_ROLE_LABELS=USER_ROLE_LABELS,
        current_locale=lambda: str(get_locale() or "ja"),
    )
