"""Automation rules: matching tickets against conditions and running actions, inside the change's transaction.

`tickets.effects` calls `on_created`, `on_changed` and `on_comment_added` in plain sight; nothing here
commits (except the supervisor's rule edits and the time-based pass in `automation.jobs`), so a rolled-back
ticket change leaves no rule effect behind, and a committed one always carries them.

Actions go through the ordinary ticket service (`update_fields`, `add_tag`, `escalate`) with a system
`Actor` that names the rule, so they write timeline events, audit rows, notifications and webhook events
like any other change. Loop protection, two layers:
  * while a rule's actions run, the engine ignores the changes they cause (a depth counter in the
    session, per transaction): a rule's own change never triggers a rule, itself included;
  * each application is an `automation_runs` row unique on (rule, ticket, triggering occurrence),
    claimed with INSERT … ON CONFLICT DO NOTHING before anything is done — the same occurrence
    (or, for time-based rules, the same ticket) never gets the rule twice, even from concurrent passes.
A ticket being created is one occurrence: the changes made while it is created (automatic
assignment, a call resolved on the phone) do not also run the 'updated' rules.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import scoped_session

from helpdesk import audit
from helpdesk.accounts.models import Organisation, User
from helpdesk.audit import Actor
from helpdesk.automation.models import TRIGGERS, AutomationRule, AutomationRun
from helpdesk.common import ORG_KINDS, TOKYO, utcnow
from helpdesk.text import clean_input, normalize, one_line
from helpdesk.tickets.models import CHANNELS, PRIORITIES, STATUSES, TIERS, Category, Comment, Ticket
from helpdesk.api.events import ticket_data
from helpdesk.api.models import WebhookSubscription
from helpdesk.notify import service as notify
from helpdesk.tickets import service as tickets

logger = logging.getLogger(__name__)

#: condition field → the operators it takes
CONDITION_FIELDS: dict[str, tuple[str, ...]] = {
    "role": ("is", "is_not"),
    "category": ("is", "is_not"),
    "priority": ("is", "is_not"),
    "channel": ("is", "is_not"),
    "status": ("is", "is_not"),
    "organisation": ("is", "is_not"),
    "tag": ("has", "has_not"),
    "text": ("contains", "not_contains"),
    "sla_state": ("is", "is_not"),
    "hours_since_update": ("gte", "lt"),
}
OPERATORS = ("is", "is_not", "has", "has_not", "contains", "not_contains", "gte", "lt")
SLA_STATES = ("ok", "at_risk", "breached")
ACTION_KINDS = ("assign_agent", "assign_group", "set_priority", "set_category", "set_status", "add_tag",
                "send_mail", "add_note", "webhook")
MAIL_RECIPIENTS = ("requester", "assignee")
MAX_CONDITIONS = 10
MAX_ACTIONS = 10
DRY_RUN_TICKETS = 100
#: Placeholders a mail or note text may use (filled when the rule acts).
PLACEHOLDERS = ("ref", "subject", "requester_name", "organisation_name", "assignee_name", "status", "priority",
                "url")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_STATE_KEY = "helpdesk_automation"


class RuleError(Exception):
    """A refused rule; `field_errors` maps form field names (e.g. 'cond-0-value') to plain messages."""

    def __init__(self, field_errors: dict[str, str]):
        super().__init__("; ".join(field_errors.values()))
        self.field_errors = field_errors


def rule_actor(rule: AutomationRule) -> Actor:
    """The system actor a rule's changes are recorded under (the timeline shows the rule's name)."""
    return Actor(None, f"自動ルール「{rule.name}」"[:254])


# --- per-transaction state: depth guard, tickets being created, rules already fired --------------

def _state(session) -> dict:
    """State of the current (outermost) transaction; a new transaction starts empty."""
    if isinstance(session, scoped_session):
        session = session()
    root = session.get_transaction()
    state = session.info.get(_STATE_KEY)
    if state is None or state["txn"] is not root:
        state = session.info[_STATE_KEY] = {"txn": root, "depth": 0, "creating": set(), "fired": set()}
    return state


# --- the three entry points (called by tickets.effects) ---------------------------------------

def on_created(session, ticket: Ticket, actor: Actor) -> None:
    """A new ticket: run the active 'created' rules in order."""
    state = _state(session)
    if state["depth"]:
        return
    state["creating"].add(ticket.id)  # what else happens while it is created is part of the creation
    _run(session, ticket, "created", "created")


def on_changed(session, ticket: Ticket, actor: Actor, event) -> None:
    """One recorded change of an existing ticket: run the active 'updated' rules in order."""
    state = _state(session)
    if state["depth"] or ticket.id in state["creating"]:
        return
    _run(session, ticket, "updated", f"e{event.id}")


def on_comment_added(session, ticket: Ticket, actor: Actor, comment: Comment) -> None:
    """A public reply from the requester's side (not staff): run the active 'reply' rules in order."""
    state = _state(session)
    if state["depth"] or ticket.id in state["creating"] or not comment.is_public:
        return
    author = comment.author if comment.author_id else None
    if author is None and comment.author_id:
        author = session.get(User, comment.author_id)
    if author is not None and author.is_staff:
        return
    _run(session, ticket, "reply", f"c{comment.id}")


def active_rules(session, trigger: str) -> list[AutomationRule]:
    return list(session.scalars(select(AutomationRule).where(AutomationRule.active.is_(True),
                                                             AutomationRule.trigger_on == trigger)
                                .order_by(AutomationRule.position, AutomationRule.id)))


def _run(session, ticket: Ticket, trigger: str, key: str) -> None:
    state = _state(session)
    # One query per trigger and transaction (a save that records three events asks once).
    rules = state.setdefault("rules", {})
    if trigger not in rules:
        rules[trigger] = active_rules(session, trigger)
    for rule in rules[trigger]:
        # One update of a ticket often records several events (priority + assignee, reply + status):
        # an 'updated' rule acts once per ticket per transaction, like one save in the agent's eyes.
        once = (rule.id, ticket.id, trigger)
        if once in state["fired"]:
            continue
        if matches(session, rule.conditions, ticket):
            state["fired"].add(once)
            apply_rule(session, rule, ticket, key)


# --- conditions --------------------------------------------------------------------------------

def _hours_since_update(ticket: Ticket, now: dt.datetime) -> float:
    last = ticket.updated_at or ticket.created_at or now
    return (now - last).total_seconds() / 3600


def condition_holds(session, cond: dict, ticket: Ticket, now: dt.datetime | None = None) -> bool:
    """Whether one condition holds for `ticket` (values are the canonical ones the service stored)."""
    field, op, value = cond.get("field"), cond.get("op"), cond.get("value")
    if field == "tag":
        has = value in ticket.tag_names
        return has if op == "has" else not has
    if field == "text":
        haystack = ticket.search_text or normalize(f"{ticket.subject}\n{ticket.body}")
        found = normalize(str(value)) in haystack
        return found if op == "contains" else not found
    if field == "hours_since_update":
        hours = _hours_since_update(ticket, now or utcnow())
        return hours >= float(value) if op == "gte" else hours < float(value)
    actual = {
        "role": lambda: ticket.role,
        "category": lambda: ticket.category.code if ticket.category else None,
        "priority": lambda: ticket.priority,
        "channel": lambda: ticket.channel,
        "status": lambda: ticket.status,
        "organisation": lambda: ticket.organisation.code if ticket.organisation else None,
        "sla_state": lambda: ticket.sla_state or "ok",
    }[field]()
    return actual == value if op == "is" else actual != value


def matches(session, conditions: list[dict], ticket: Ticket, now: dt.datetime | None = None) -> bool:
    """All conditions hold (no conditions: every ticket)."""
    return all(condition_holds(session, c, ticket, now) for c in conditions or ())


# --- actions -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    kind: str
    done: bool
    text: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "done": self.done, "text": self.text}


def _claim(session, rule_id: int, ticket_id: int, key: str) -> int | None:
    """Insert the run row unless it exists (one statement; a concurrent claimer waits, then gets None)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    table = AutomationRun.__table__
    stmt = (dialect_insert(table).values(rule_id=rule_id, ticket_id=ticket_id, trigger_key=key, at=utcnow())
            .on_conflict_do_nothing(index_elements=[table.c.rule_id, table.c.ticket_id, table.c.trigger_key])
            .returning(table.c.id))
    return connection.execute(stmt).scalar()


def apply_rule(session, rule: AutomationRule, ticket: Ticket, key: str) -> list[Outcome] | None:
    """Run `rule`'s actions on `ticket` once for the occurrence `key`; None when it already ran for it."""
    from sqlalchemy import update

    run_id = _claim(session, rule.id, ticket.id, key)
    if run_id is None:
        return None
    actor = rule_actor(rule)
    state = _state(session)
    state["depth"] += 1
    outcomes: list[Outcome] = []
    try:
        for index, action in enumerate(rule.actions or ()):
            outcomes.append(_act(session, rule, ticket, action, actor, run_id, index))
    finally:
        state["depth"] -= 1
    session.execute(update(AutomationRun.__table__).where(AutomationRun.__table__.c.id == run_id)
                    .values(outcome=[o.as_dict() for o in outcomes]))
    audit.record(session, actor, "automation.fired", "ticket", ticket.id,
                 {"rule_id": rule.id, "rule": rule.name, "trigger": rule.trigger_on, "key": key,
                  "changes": [o.text for o in outcomes]})
    logger.debug("automation rule %s acted on %s (%s)", rule.id, ticket.ref, key)
    return outcomes


def _act(session, rule: AutomationRule, ticket: Ticket, action: dict, actor: Actor, run_id: int,
         index: int) -> Outcome:
    kind, value = action.get("kind"), action.get("value")
    try:
        if kind == "set_priority":
            if ticket.priority == value:
                return Outcome(kind, False, f"優先度は既に {value}")
            before = ticket.priority
            tickets.update_fields(session, ticket.id, actor, priority=value, commit=False)
            return Outcome(kind, True, f"優先度 {before} → {value}")
        if kind == "set_category":
            before = ticket.category.code if ticket.category else None
            if before == value:
                return Outcome(kind, False, f"カテゴリは既に {value}")
            tickets.update_fields(session, ticket.id, actor, category=value, commit=False)
            return Outcome(kind, True, f"カテゴリ {before or '—'} → {value}")
        if kind == "set_status":
            before = ticket.status
            if before == value:
                return Outcome(kind, False, f"ステータスは既に {value}")
            tickets.update_fields(session, ticket.id, actor, status=value, commit=False)
            return Outcome(kind, True, f"ステータス {before} → {value}")
        if kind == "assign_agent":
            if ticket.assignee_id == int(value):
                return Outcome(kind, False, "既にこの担当者")
            tickets.update_fields(session, ticket.id, actor, assignee_id=int(value), commit=False)
            return Outcome(kind, True, f"担当者 → {ticket.assignee.email if ticket.assignee else value}")
        if kind == "assign_group":
            if TIERS.index(value) <= TIERS.index(ticket.tier):
                return Outcome(kind, False, f"グループは既に {ticket.tier}")
            before = ticket.tier
            tickets.escalate(session, ticket.id, value, f"{actor.label}による自動エスカレーション", actor,
                             commit=False)
            return Outcome(kind, True, f"グループ {before} → {value}")
        if kind == "add_tag":
            if value in ticket.tag_names:
                return Outcome(kind, False, f"タグ {value} は既にあり")
            tickets.add_tag(session, ticket.id, value, actor, commit=False)
            return Outcome(kind, True, f"タグ {value} を追加")
        if kind == "add_note":
            _add_note(session, ticket, fill(action.get("text") or "", ticket), actor)
            return Outcome(kind, True, "内部メモを追加")
        if kind == "send_mail":
            return _send_mail(session, rule, ticket, action, run_id, index)
        if kind == "webhook":
            return _fire_webhook(session, rule, ticket, int(value), run_id, index)
    except tickets.TicketError as exc:  # refused by the ticket service (e.g. a transition not allowed)
        return Outcome(kind, False, f"実行できませんでした: {exc}")
    return Outcome(str(kind), False, "不明な操作")


def _add_note(session, ticket: Ticket, body: str, actor: Actor) -> Comment:
    """An internal note by the rule: the ticket service's note written as the system (no author, no
    status change; shown as 自動ルール（システム）)."""
    return tickets.add_comment(session, ticket.id, clean_input(body, 20_000) or actor.label, actor, public=False,
                               via="automation", system=True, commit=False)


def _base_url() -> str:
    from flask import current_app, has_app_context

    return (current_app.config.get("BASE_URL") or "").rstrip("/") if has_app_context() else ""


def fill(text: str, ticket: Ticket) -> str:
    """Fill {ref}, {subject}, {requester_name}, … in a rule's text; unknown names stay as typed."""
    base = _base_url()
    values = {
        "ref": ticket.ref, "subject": ticket.subject,
        "requester_name": ticket.requester.name if ticket.requester else "お客様",
        "organisation_name": ticket.organisation.name if ticket.organisation else "",
        "assignee_name": ticket.assignee.name if ticket.assignee else "",
        "status": ticket.status, "priority": ticket.priority,
        "url": f"{base}/portal/tickets/{ticket.ref}",
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text or "")


def _send_mail(session, rule: AutomationRule, ticket: Ticket, action: dict, run_id: int, index: int) -> Outcome:
    recipient = ticket.requester if action.get("value") == "requester" else ticket.assignee
    if not notify.enabled():
        return Outcome("send_mail", False, "メール通知は停止中")
    email = (getattr(recipient, "email", None) or "").lower()
    if (recipient is None or "@" not in email or email.endswith(notify.PLACEHOLDER_DOMAINS)
            or not recipient.is_active):
        return Outcome("send_mail", False, "送信先のメールアドレスがありません")
    lang = recipient.locale if recipient.locale in ("ja", "en") else "ja"
    subject = one_line(f"[{ticket.ref}] " + fill(action.get("subject") or "", ticket), 480)
    path = f"/portal/tickets/{ticket.ref}" if action.get("value") == "requester" else f"/tickets/{ticket.ref}"
    url = _base_url() + path
    root = notify.thread_root_id(ticket.id)
    # Rendered by the delivery job from automation's template (notify/mail/automation.<lang>.txt).
    notify.queue_email(session, to=recipient.email, subject=subject, body_text=None, purpose="automation.mail",
                       ticket_id=ticket.id, dedupe_key=f"auto:{run_id}:{index}",
                       headers={"Message-ID": notify.new_message_id(ticket.id), "In-Reply-To": root,
                                "References": root, "lang": lang},
                       render={"template": "automation", "lang": lang, "ref": ticket.ref,
                               "context": {"name": recipient.name, "body": fill(action.get("text") or "", ticket),
                                           "url": url, "action_url": url}})
    return Outcome("send_mail", True, f"メールを送信: {recipient.email}")


def _fire_webhook(session, rule: AutomationRule, ticket: Ticket, subscription_id: int, run_id: int,
                  index: int) -> Outcome:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or not sub.active:
        return Outcome("webhook", False, "Webhook が無効か削除されています")
    data = ticket_data(ticket)
    data["rule"] = {"id": rule.id, "name": rule.name, "trigger": rule.trigger_on}
    payload = {"event": "automation.rule", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"auto:{run_id}:{index}")),
               "occurred_at": utcnow().astimezone(TOKYO).isoformat(timespec="seconds"), "data": data}
    notify.queue_webhook(session, url=sub.url, payload=payload, purpose="webhook:automation.rule",
                         secret_ref=sub.secret_ref, object_ref=f"subscription:{sub.id}", ticket_id=ticket.id,
                         dedupe_key=f"auto:{run_id}:{index}")
    return Outcome("webhook", True, f"Webhook「{sub.name}」に送信")


# --- dry run -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Preview:
    ticket: Ticket
    matched: bool
    #: what each action would do (plain words), when matched
    changes: list[str]
    #: a time-based rule that already acted on this ticket
    already: bool = False


def preview_action(session, action: dict, ticket: Ticket) -> str:
    """What one action would do to `ticket` now, in words of the UI language; nothing is written."""
    from flask_babel import gettext as _

    kind, value = action.get("kind"), action.get("value")
    if kind == "set_priority":
        if ticket.priority == value:
            return _("変更なし（優先度は既に %(v)s）", v=value)
        return _("優先度 %(a)s → %(b)s", a=ticket.priority, b=value)
    if kind == "set_category":
        before = ticket.category.code if ticket.category else None
        if before == value:
            return _("変更なし（カテゴリは既に %(v)s）", v=value)
        return _("カテゴリ %(a)s → %(b)s", a=before or "—", b=value)
    if kind == "set_status":
        from helpdesk.tickets.models import TRANSITIONS

        if ticket.status == value:
            return _("変更なし（ステータスは既に %(v)s）", v=value)
        if value not in TRANSITIONS.get(ticket.status, ()):
            return _("実行できません（%(a)s から %(b)s には変更できません）", a=ticket.status, b=value)
        return _("ステータス %(a)s → %(b)s", a=ticket.status, b=value)
    if kind == "assign_agent":
        user = session.get(User, int(value))
        name = user.name if user else value
        if ticket.assignee_id == int(value):
            return _("変更なし（担当者は既に %(v)s）", v=name)
        return _("担当者 → %(v)s", v=name)
    if kind == "assign_group":
        if TIERS.index(value) <= TIERS.index(ticket.tier):
            return _("変更なし（グループは既に %(v)s）", v=ticket.tier)
        return _("グループ %(a)s → %(b)s", a=ticket.tier, b=value)
    if kind == "add_tag":
        if value in ticket.tag_names:
            return _("変更なし（タグ %(v)s は既にあり）", v=value)
        return _("タグ %(v)s を追加", v=value)
    if kind == "add_note":
        return _("内部メモを追加: %(v)s", v=fill(action.get("text") or "", ticket)[:80])
    if kind == "send_mail":
        user = ticket.requester if value == "requester" else ticket.assignee
        if user is None:
            return _("メールなし（送信先がいません）")
        return _("メール「%(s)s」→ %(to)s", s=fill(action.get("subject") or "", ticket)[:60], to=user.email)
    if kind == "webhook":
        from helpdesk.api.models import WebhookSubscription

        sub = session.get(WebhookSubscription, int(value))
        return _("Webhook「%(v)s」に送信", v=sub.name) if sub is not None else _("Webhook が見つかりません")
    return str(kind)


def dry_run(session, *, trigger: str, conditions: list[dict], actions: list[dict], rule_id: int | None = None,
            limit: int = DRY_RUN_TICKETS, now: dt.datetime | None = None) -> list[Preview]:
    """Which of the last `limit` tickets the conditions match now, and what the actions would change."""
    now = now or utcnow()
    tickets = session.scalars(select(Ticket).order_by(Ticket.id.desc()).limit(limit)).all()
    applied = set()
    if rule_id is not None and trigger == "timed" and tickets:
        applied = set(session.scalars(select(AutomationRun.ticket_id).where(
            AutomationRun.rule_id == rule_id, AutomationRun.trigger_key == "timed",
            AutomationRun.ticket_id.in_([t.id for t in tickets]))))
    out = []
    for ticket in tickets:
        ok = matches(session, conditions, ticket, now)
        if ok and trigger == "timed" and ticket.status == "closed":
            ok = False  # the time-based pass never looks at closed tickets
        out.append(Preview(ticket, ok, [preview_action(session, a, ticket) for a in actions] if ok else [],
                           ticket.id in applied))
    return out


# --- rule editing (the supervisor's pages) --------------------------------------------------------

def _category_code(session, raw: str) -> str | None:
    raw = normalize(raw)
    for cat in session.scalars(select(Category)):
        if raw in (normalize(cat.code), normalize(cat.name_ja), normalize(cat.name_en)):
            return cat.code
    return None


_STATUS_WORDS = {"新規": "new", "対応中": "open", "回答待ち": "pending", "エスカレーション中": "escalated",
                 "解決済み": "resolved", "完了": "closed"}
_ROLE_WORDS = {"自治体": "municipality", "医療機関": "clinic", "卸業者": "wholesaler"}
_CHANNEL_WORDS = {"電話": "phone", "メール": "email"}
_SLA_WORDS = {"正常": "ok", "期限間近": "at_risk", "超過": "breached"}
_GROUP_WORDS = {"開発": "dev"}
_RECIPIENT_WORDS = {"依頼者": "requester", "担当者": "assignee"}


def _pick(raw: str, allowed: tuple[str, ...], words: dict[str, str] | None = None) -> str | None:
    value = (raw or "").strip()
    if value in (words or {}):
        return (words or {})[value]
    low = normalize(value).replace(" ", "_")
    for item in allowed:
        if low == item.lower():
            return item
    return None


def validate(session, *, name: str, trigger: str, interval_minutes: int | None, conditions: list[dict],
             actions: list[dict]) -> tuple[dict, list[dict], list[dict]]:
    """Check a rule as typed; returns (fields, conditions, actions) in canonical form or raises RuleError.

    Condition rows are {"field", "op", "value"}; action rows {"kind", "value", "subject", "text"}; the
    row number `i` in error keys is the row's index in the lists given (blank rows are the caller's to drop).
    """
    errors: dict[str, str] = {}
    name = one_line(name, 100)
    if not name:
        errors["name"] = "ルール名を入力してください。"
    if trigger not in TRIGGERS:
        errors["trigger"] = "実行のタイミングを選んでください。"
    if trigger == "timed":
        if interval_minutes is None:
            errors["interval_minutes"] = "時間で実行するルールは、実行の間隔（分）を入力してください。"
        elif not 5 <= interval_minutes <= 10080:
            errors["interval_minutes"] = "実行の間隔は 5〜10080 分（7日）で入力してください。"
        if not conditions:
            errors["conditions"] = "時間で実行するルールには条件を一つ以上入れてください（例: 最終更新からの時間 8 時間以上）。"
    else:
        interval_minutes = None
    if len(conditions) > MAX_CONDITIONS:
        errors["conditions"] = f"条件は {MAX_CONDITIONS} 個までです。"
    if not actions:
        errors["actions"] = "操作を一つ以上入れてください。"
    elif len(actions) > MAX_ACTIONS:
        errors["actions"] = f"操作は {MAX_ACTIONS} 個までです。"

    clean_conditions = []
    for i, cond in enumerate(conditions):
        i = cond.get("row", i)
        field, op, raw = cond.get("field") or "", cond.get("op") or "", (cond.get("value") or "").strip()
        if field not in CONDITION_FIELDS:
            errors[f"cond-{i}-field"] = "条件の項目を選んでください。"
            continue
        if op not in CONDITION_FIELDS[field]:
            errors[f"cond-{i}-op"] = "この項目に使えない比べ方です。選び直してください。"
            continue
        value: Any = None
        if not raw:
            errors[f"cond-{i}-value"] = "条件の値を入力してください。"
            continue
        if field == "role":
            value = _pick(raw, ORG_KINDS, _ROLE_WORDS)
            msg = "利用者の区分は 自治体・医療機関・卸業者 のどれかを入力してください。"
        elif field == "category":
            value = _category_code(session, raw)
            msg = f"カテゴリ「{raw}」はありません。"
        elif field == "priority":
            value = _pick(raw, PRIORITIES)
            msg = "優先度は P1〜P4 で入力してください。"
        elif field == "channel":
            value = _pick(raw, CHANNELS, _CHANNEL_WORDS)
            msg = "受付チャネルは 電話・web・メール・api のどれかを入力してください。"
        elif field == "status":
            value = _pick(raw, STATUSES, _STATUS_WORDS)
            msg = "ステータスは 新規・対応中・回答待ち・エスカレーション中・解決済み・完了 のどれかを入力してください。"
        elif field == "organisation":
            org = session.scalar(select(Organisation).where(Organisation.code == raw))
            value = org.code if org else None
            msg = f"組織コード「{raw}」の組織はありません。"
        elif field == "tag":
            from helpdesk.tickets.service import normalize_tag

            value = normalize_tag(raw) or None
            msg = "タグを入力してください。"
        elif field == "text":
            value = clean_input(raw, 200) or None
            msg = "探す言葉を入力してください。"
        elif field == "sla_state":
            value = _pick(raw, SLA_STATES, _SLA_WORDS)
            msg = "SLAの状態は 正常・期限間近・超過 のどれかを入力してください。"
        else:  # hours_since_update
            try:
                number = float(normalize(raw))
                value = int(number) if number == int(number) else number
                msg = ""
                if not 0 < number <= 24 * 365:
                    value, msg = None, "時間は 0 より大きく 8760 以下の数で入力してください。"
            except ValueError:
                value, msg = None, "時間は数字で入力してください（例: 8 や 1.5）。"
        if value is None:
            errors[f"cond-{i}-value"] = msg
            continue
        clean_conditions.append({"field": field, "op": op, "value": value})

    clean_actions = []
    for i, action in enumerate(actions):
        i = action.get("row", i)
        kind, raw = action.get("kind") or "", (action.get("value") or "").strip()
        subject, text = one_line(action.get("subject"), 200), clean_input(action.get("text"), 20_000).strip()
        if kind not in ACTION_KINDS:
            errors[f"act-{i}-kind"] = "操作を選んでください。"
            continue
        value: Any = None
        row: dict[str, Any] = {"kind": kind}
        msg = ""
        if kind == "assign_agent":
            user = session.scalar(select(User).where(func.lower(User.email) == raw.lower())) if raw else None
            value = user.id if user is not None and user.is_staff and user.is_active else None
            msg = "担当者はヘルプデスク担当者のログインID（メールアドレス）で入力してください。"
        elif kind == "assign_group":
            value = _pick(raw, TIERS, _GROUP_WORDS)
            msg = "グループは L2 か 開発 (dev) を入力してください（L1 へは戻せません）。"
            if value == "L1":
                value = None
        elif kind == "set_priority":
            value = _pick(raw, PRIORITIES)
            msg = "優先度は P1〜P4 で入力してください。"
        elif kind == "set_category":
            value = _category_code(session, raw) if raw else None
            msg = f"カテゴリ「{raw}」はありません。" if raw else "カテゴリを入力してください。"
        elif kind == "set_status":
            value = _pick(raw, STATUSES, _STATUS_WORDS)
            msg = "ステータスは 対応中・回答待ち・解決済み などを入力してください。"
        elif kind == "add_tag":
            from helpdesk.tickets.service import normalize_tag

            value = normalize_tag(raw) or None
            msg = "付けるタグを入力してください。"
        elif kind == "send_mail":
            value = _pick(raw, MAIL_RECIPIENTS, _RECIPIENT_WORDS)
            msg = "送信先は 依頼者 か 担当者 を入力してください。"
            if not subject:
                errors[f"act-{i}-subject"] = "メールの件名を入力してください。"
            if not text:
                errors[f"act-{i}-text"] = "メールの本文を入力してください。"
            row.update(subject=subject, text=text)
        elif kind == "add_note":
            value = "note"
            if not text:
                errors[f"act-{i}-text"] = "内部メモの本文を入力してください。"
            row["text"] = text
        elif kind == "webhook":
            sub = session.scalar(select(WebhookSubscription).where(
                (WebhookSubscription.name == raw) | (WebhookSubscription.id == (int(raw) if raw.isdigit() else -1))))
            value = sub.id if sub is not None and sub.active else None
            msg = "送信先の Webhook の名前を入力してください（管理 → Webhook に登録済みのもの）。"
        if value is None:
            errors[f"act-{i}-value"] = msg
            continue
        row["value"] = value
        if kind in ("send_mail", "add_note"):
            unknown = sorted({m for m in _PLACEHOLDER.findall(subject + text) if m not in PLACEHOLDERS})
            if unknown:
                errors[f"act-{i}-text"] = "使えない差し込み: " + "、".join("{" + u + "}" for u in unknown)
        clean_actions.append(row)
    if errors:
        raise RuleError(errors)
    return {"name": name, "trigger_on": trigger, "interval_minutes": interval_minutes}, clean_conditions, clean_actions


def rule_dict(rule: AutomationRule) -> dict:
    return {"name": rule.name, "trigger": rule.trigger_on, "position": rule.position, "active": rule.active,
            "interval_minutes": rule.interval_minutes, "conditions": rule.conditions, "actions": rule.actions}


def save_rule(session, actor: Actor, *, rule_id: int | None = None, name: str, trigger: str,
              interval_minutes: int | None, conditions: list[dict], actions: list[dict],
              active: bool = True) -> AutomationRule:
    """Create or change a rule (validated, audited, committed); a new rule goes to the end of the list."""
    fields, conditions, actions = validate(session, name=name, trigger=trigger, interval_minutes=interval_minutes,
                                           conditions=conditions, actions=actions)
    if rule_id is not None:
        rule = session.get(AutomationRule, rule_id)
        if rule is None:
            raise RuleError({"name": "ルールが見つかりません。"})
        before = rule_dict(rule)
    else:
        last = session.scalar(select(func.max(AutomationRule.position))) or 0
        rule, before = AutomationRule(position=last + 1), None
        session.add(rule)
    rule.name, rule.trigger_on, rule.interval_minutes = fields["name"], fields["trigger_on"], fields["interval_minutes"]
    rule.conditions, rule.actions, rule.active = conditions, actions, bool(active)
    rule.updated_by_id = actor.user_id
    session.flush()
    audit.record(session, actor, "automation_rule.updated" if before else "automation_rule.created",
                 "automation_rule", rule.id, {"before": before, "after": rule_dict(rule)})
    session.commit()
    return rule


def set_active(session, actor: Actor, rule_id: int, active: bool) -> AutomationRule | None:
    rule = session.get(AutomationRule, rule_id)
    if rule is None:
        return None
    if rule.active != active:
        rule.active = active
        audit.record(session, actor, "automation_rule.enabled" if active else "automation_rule.disabled",
                     "automation_rule", rule.id, {"name": rule.name})
    session.commit()
    return rule


def move_rule(session, actor: Actor, rule_id: int, direction: str) -> AutomationRule | None:
    """Swap a rule with its neighbour above ('up') or below ('down'); positions are renumbered 1..n."""
    rules = list(session.scalars(select(AutomationRule).order_by(AutomationRule.position, AutomationRule.id)))
    index = next((i for i, r in enumerate(rules) if r.id == rule_id), None)
    if index is None:
        return None
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(rules):
        rules[index], rules[other] = rules[other], rules[index]
        for position, rule in enumerate(rules, start=1):
            rule.position = position
        audit.record(session, actor, "automation_rule.moved", "automation_rule", rule_id,
                     {"name": rules[other].name, "direction": direction, "position": other + 1})
    session.commit()
    return rules[other] if 0 <= other < len(rules) else rules[index]


def delete_rule(session, actor: Actor, rule_id: int) -> bool:
    rule = session.get(AutomationRule, rule_id)
    if rule is None:
        return False
    audit.record(session, actor, "automation_rule.deleted", "automation_rule", rule.id, {"before": rule_dict(rule)})
    session.delete(rule)
    session.commit()
    return True


def run_counts(session) -> dict[int, tuple[int, dt.datetime | None]]:
    """rule id → (times it acted, last time)."""
    rows = session.execute(select(AutomationRun.rule_id, func.count(), func.max(AutomationRun.at))
                           .group_by(AutomationRun.rule_id)).all()
    return {int(r): (int(n), at) for r, n, at in rows}
