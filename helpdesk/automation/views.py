"""Supervisor pages of automation rules: the ordered list (up/down, on/off), the form with condition and
action rows, and the dry run over the last 100 tickets. The rules act in `automation.service`."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.auth import supervisor_required
from helpdesk.automation import bp, service
from helpdesk.automation.models import AutomationRule
from helpdesk.extensions import db
from helpdesk.security import client_ip
from helpdesk.templating import CHANNEL_LABELS, ROLE_LABELS, STATUS_LABELS

TRIGGER_LABELS = {"created": _l("チケットが作成されたとき"), "updated": _l("チケットが更新されたとき"),
                  "reply": _l("依頼者が返信したとき"), "timed": _l("一定の間隔で（時間の経過で実行）")}
FIELD_LABELS = {"role": _l("利用者の区分"), "category": _l("カテゴリ"), "priority": _l("優先度"),
                "channel": _l("受付チャネル"), "status": _l("ステータス"), "organisation": _l("組織コード"),
                "tag": _l("タグ"), "text": _l("件名・本文・返信の言葉"), "sla_state": _l("SLAの状態"),
                "hours_since_update": _l("最終更新からの時間（時間）")}
OP_LABELS = {"is": _l("が次と同じ"), "is_not": _l("が次と違う"), "has": _l("が付いている"), "has_not": _l("が付いていない"),
             "contains": _l("に次を含む"), "not_contains": _l("に次を含まない"), "gte": _l("が次以上"), "lt": _l("が次未満")}
ACTION_LABELS = {"assign_agent": _l("担当者に割り当てる"), "assign_group": _l("グループを上げる（エスカレーション）"),
                 "set_priority": _l("優先度を変える"), "set_category": _l("カテゴリを変える"),
                 "set_status": _l("ステータスを変える"), "add_tag": _l("タグを付ける"), "send_mail": _l("メールを送る"),
                 "add_note": _l("内部メモを書く"), "webhook": _l("Webhook を送る")}
#: What to type in an action's value box, per kind (shown as the fieldset's hint table).
ACTION_VALUE_HINTS = {"assign_agent": _l("担当者のログインID（メールアドレス）"), "assign_group": _l("L2 または 開発"),
                      "set_priority": _l("P1〜P4"), "set_category": _l("カテゴリ名またはコード"),
                      "set_status": _l("対応中・回答待ち・解決済み など"), "add_tag": _l("タグ"),
                      "send_mail": _l("依頼者 または 担当者（件名と本文も入力）"), "add_note": _l("（空欄・本文に入力）"),
                      "webhook": _l("管理 → Webhook に登録した名前")}
SLA_LABELS = {"ok": _l("正常"), "at_risk": _l("期限間近"), "breached": _l("超過")}


class RuleForm(FlaskForm):
    name = StringField(_l("ルール名"), validators=[Length(max=100)])
    trigger = SelectField(_l("実行のタイミング"), choices=[])
    interval_minutes = IntegerField(_l("実行の間隔（分）"), validators=[Optional(), NumberRange(
        min=5, max=10080, message=_l("実行の間隔は 5〜10080 分（7日）で入力してください。"))],
        description=_l("「一定の間隔で」のルールだけ。cron の helpdesk automation run-timed が、この間隔ごとに調べます。"))
    active = BooleanField(_l("有効"), default=True)


class ActionForm(FlaskForm):
    """CSRF only (up/down, on/off, delete)."""


def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


def _rows(prefix: str, keys: tuple[str, ...]) -> list[dict]:
    """The non-blank condition/action rows of the posted form, each with its row number."""
    rows = []
    for i in range(service.MAX_ACTIONS if prefix == "act" else service.MAX_CONDITIONS):
        row = {k: (request.form.get(f"{prefix}-{i}-{k}") or "") for k in keys}
        # The comparison select always has a value: a row counts when anything else in it was filled in.
        if any(row.get(k, "").strip() for k in keys if k != "op"):
            rows.append({**row, "row": i})
    return rows


def _display_value(kind: str, value) -> str:
    """A stored action value as the supervisor typed it (ids back to login / webhook name)."""
    if kind == "assign_agent":
        user = db.session.get(User, int(value))
        return user.email if user else str(value)
    if kind == "webhook":
        from helpdesk.api.models import WebhookSubscription

        sub = db.session.get(WebhookSubscription, int(value))
        return sub.name if sub else str(value)
    if kind == "add_note":
        return ""
    return str(value)


def _form_rows(rule: AutomationRule | None) -> tuple[list[dict], list[dict]]:
    if request.method == "POST":
        conds = {r["row"]: r for r in _rows("cond", ("field", "op", "value"))}
        acts = {r["row"]: r for r in _rows("act", ("kind", "value", "subject", "text"))}
        n_c = min(service.MAX_CONDITIONS, max([*conds, -1]) + 3)
        n_a = min(service.MAX_ACTIONS, max([*acts, -1]) + 3)
        return ([conds.get(i, {}) for i in range(n_c)], [acts.get(i, {}) for i in range(n_a)])
    conds = [dict(c, value=str(c["value"])) for c in (rule.conditions if rule else [])]
    acts = [dict(a, value=_display_value(a["kind"], a["value"])) for a in (rule.actions if rule else [])]
    conds += [{}] * (min(service.MAX_CONDITIONS, max(3, len(conds) + 2)) - len(conds))
    acts += [{}] * (min(service.MAX_ACTIONS, max(3, len(acts) + 2)) - len(acts))
    return conds, acts


def _fill(form: RuleForm) -> None:
    form.trigger.choices = [(k, str(v)) for k, v in TRIGGER_LABELS.items()]


def _render_form(form, rule, errors, preview=None, status=200):
    conds, acts = _form_rows(rule)
    return render_template("automation/rule_form.html", form=form, rule=rule, conds=conds, acts=acts,
                           errors=errors, preview=preview, FIELD_LABELS=FIELD_LABELS, OP_LABELS=OP_LABELS,
                           ACTION_LABELS=ACTION_LABELS, ACTION_VALUE_HINTS=ACTION_VALUE_HINTS,
                           PLACEHOLDERS=service.PLACEHOLDERS, describe_action=describe_action,
                           TRIGGER_LABELS=TRIGGER_LABELS), status


def _submit(form: RuleForm, rule: AutomationRule | None):
    """Save (or, with the 'dry_run' button, only try) the posted rule; returns a response."""
    errors: dict[str, str] = {}
    form.validate()
    errors.update({name: " ".join(str(e) for e in f.errors) for name, f in form._fields.items() if f.errors})
    conditions = _rows("cond", ("field", "op", "value"))
    actions = _rows("act", ("kind", "value", "subject", "text"))
    kwargs = dict(name=form.name.data or "", trigger=form.trigger.data or "",
                  interval_minutes=form.interval_minutes.data, conditions=conditions, actions=actions)
    try:
        if "dry_run" in request.form:
            if errors:
                raise service.RuleError(errors)
            fields, conds, acts = service.validate(db.session, **kwargs)
            preview = service.dry_run(db.session, trigger=fields["trigger_on"], conditions=conds, actions=acts,
                                      rule_id=rule.id if rule else None)
            return _render_form(form, rule, {}, preview=preview)
        if errors:
            service.validate(db.session, **kwargs)  # also collect the row errors, said all at once
            raise service.RuleError(errors)
        saved = service.save_rule(db.session, _actor(), rule_id=rule.id if rule else None,
                                  active=form.active.data, **kwargs)
    except service.RuleError as exc:
        db.session.rollback()
        errors = {**{k: _(v) for k, v in exc.field_errors.items()}, **errors}
        for name, message in errors.items():
            if name in form._fields:
                form._fields[name].errors = [message]
        return _render_form(form, rule, errors, status=400)
    flash(_("自動ルール「%(name)s」を保存しました。", name=saved.name), "success")
    return redirect(url_for("automation.rules"))


@bp.route("/agent/automation")
@supervisor_required
def rules():
    rows = db.session.scalars(select(AutomationRule).order_by(AutomationRule.position, AutomationRule.id)).all()
    return render_template("automation/rules.html", rules=rows, counts=service.run_counts(db.session),
                           TRIGGER_LABELS=TRIGGER_LABELS, describe_condition=describe_condition,
                           describe_action=describe_action, action_form=ActionForm())


@bp.route("/agent/automation/new", methods=["GET", "POST"])
@supervisor_required
def rule_new():
    form = RuleForm()
    _fill(form)
    if request.method == "POST":
        return _submit(form, None)
    return _render_form(form, None, {})


@bp.route("/agent/automation/<int:rule_id>", methods=["GET", "POST"])
@supervisor_required
def rule_edit(rule_id: int):
    rule = db.session.get(AutomationRule, rule_id) or abort(404)
    if request.method == "POST":
        form = RuleForm()
    else:
        form = RuleForm(name=rule.name, trigger=rule.trigger_on, interval_minutes=rule.interval_minutes,
                        active=rule.active)
    _fill(form)
    if request.method == "POST":
        return _submit(form, rule)
    return _render_form(form, rule, {})


@bp.get("/agent/automation/<int:rule_id>/dry-run")
@supervisor_required
def rule_dry_run(rule_id: int):
    rule = db.session.get(AutomationRule, rule_id) or abort(404)
    preview = service.dry_run(db.session, trigger=rule.trigger_on, conditions=rule.conditions,
                              actions=rule.actions, rule_id=rule.id)
    return render_template("automation/dry_run.html", rule=rule, preview=preview, TRIGGER_LABELS=TRIGGER_LABELS,
                           describe_condition=describe_condition, describe_action=describe_action)


@bp.post("/agent/automation/<int:rule_id>/move")
@supervisor_required
def rule_move(rule_id: int):
    if not ActionForm().validate():
        abort(400)
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        abort(400)
    if service.move_rule(db.session, _actor(), rule_id, direction) is None:
        abort(404)
    flash(_("順序を変更しました。"), "success")
    return redirect(url_for("automation.rules"))


@bp.post("/agent/automation/<int:rule_id>/active")
@supervisor_required
def rule_active(rule_id: int):
    if not ActionForm().validate():
        abort(400)
    wanted = request.form.get("active") == "1"
    if service.set_active(db.session, _actor(), rule_id, wanted) is None:
        abort(404)
    flash(_("自動ルールを有効にしました。") if wanted else _("自動ルールを無効にしました。"), "success")
    return redirect(url_for("automation.rules"))


@bp.post("/agent/automation/<int:rule_id>/delete")
@supervisor_required
def rule_delete(rule_id: int):
    if not ActionForm().validate():
        abort(400)
    if not service.delete_rule(db.session, _actor(), rule_id):
        abort(404)
    flash(_("自動ルールを削除しました。"), "success")
    return redirect(url_for("automation.rules"))


# --- words for the pages ------------------------------------------------------------------------

def _value_words(field: str, value) -> str:
    table = {"role": ROLE_LABELS, "channel": CHANNEL_LABELS, "status": STATUS_LABELS, "sla_state": SLA_LABELS}
    if field in table and value in table[field]:
        return str(table[field][value])
    if field == "category":
        from helpdesk.tickets.models import Category

        cat = db.session.scalar(select(Category).where(Category.code == value))
        if cat is not None:
            from flask_babel import get_locale

            return cat.label(str(get_locale() or "ja"))
    if field == "hours_since_update":
        return _("%(n)s 時間", n=value)
    return str(value)


def describe_condition(cond: dict) -> str:
    return f"{FIELD_LABELS.get(cond['field'], cond['field'])} {OP_LABELS.get(cond['op'], cond['op'])} " \
           f"「{_value_words(cond['field'], cond['value'])}」"


def describe_action(action: dict) -> str:
    kind, value = action["kind"], action.get("value")
    label = str(ACTION_LABELS.get(kind, kind))
    if kind == "send_mail":
        who = _("依頼者") if value == "requester" else _("担当者")
        return f"{label}: {who}「{action.get('subject', '')}」"
    if kind == "add_note":
        return f"{label}: {(action.get('text') or '')[:40]}"
    if kind == "set_status":
        return f"{label}: {_value_words('status', value)}"
    if kind == "set_category":
        return f"{label}: {_value_words('category', value)}"
    return f"{label}: {_display_value(kind, value)}"
