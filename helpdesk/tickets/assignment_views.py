"""Pages of automatic assignment: the supervisor's rule list (create, edit, switch off) and each agent's
own shift switch. The rules are applied by `tickets.assignment.auto_assign` when a ticket is created."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, RadioField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.auth import staff_required, supervisor_required
from helpdesk.common import ORG_KINDS
from helpdesk.extensions import db
from helpdesk.security import client_ip
from helpdesk.templating import ROLE_LABELS
from helpdesk.tickets import assignment, bp
from helpdesk.tickets.models import AssignmentRule, Category

MODE_LABELS = {"round_robin": _l("順番に割り当てる（ラウンドロビン）"),
               "least_loaded": _l("対応中の件数が最も少ない担当者に割り当てる")}


class RuleForm(FlaskForm):
    name = StringField(_l("ルール名"), validators=[DataRequired(_l("ルール名を入力してください。")), Length(max=100)])
    category = SelectField(_l("カテゴリ"), choices=[], validators=[Optional()])
    role = SelectField(_l("利用者の区分"), choices=[], validators=[Optional()])
    mode = RadioField(_l("割当方法"), choices=[], default="round_robin",
                      validators=[DataRequired(_l("割当方法を選んでください。"))])
    agents = SelectMultipleField(_l("担当者"), choices=[], coerce=int, option_widget=CheckboxInput(),
                                 widget=ListWidget(prefix_label=False), validate_choice=False)
    position = IntegerField(_l("順序"), default=0, validators=[Optional(), NumberRange(min=0, max=999,
                            message=_l("順序は 0〜999 の数で入力してください。"))],
                            description=_l("小さい順に調べ、最初に当てはまったルールだけを使います。"))
    active = BooleanField(_l("有効"), default=True)


class ShiftForm(FlaskForm):
    """CSRF plus the wanted state ("1" on shift, "0" absent); `user_id` only on the supervisor's page."""


def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


def _locale() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "ja")


def _agents() -> list[User]:
    users = db.session.scalars(select(User).where(User.organisation_id.is_(None), User.state != "disabled")
                               .order_by(User.name).limit(500)).all()
    return [u for u in users if u.is_staff]


def _categories() -> list[Category]:
    return list(db.session.scalars(select(Category).where(Category.active.is_(True)).order_by(Category.position)))


def _fill(form: RuleForm, agents: list[User]) -> None:
    form.category.choices = [("", _("（すべてのカテゴリ）"))] + [(str(c.id), c.label(_locale())) for c in _categories()]
    form.role.choices = [("", _("（すべての区分）"))] + [(k, str(ROLE_LABELS[k])) for k in ORG_KINDS]
    form.mode.choices = [(k, str(v)) for k, v in MODE_LABELS.items()]
    form.agents.choices = [(u.id, u.name) for u in agents]


def _save(form: RuleForm, rule_id: int | None):
    """Validate and save; returns the rule or None with the errors on the form's fields."""
    valid = form.validate()
    if not form.agents.data:  # said at once with the other fields' errors, not after they are fixed
        form.agents.errors = list(form.agents.errors) + [_("担当者を一人以上選んでください。")]
        valid = False
    if not valid:
        return None
    try:
        return assignment.save_rule(
            db.session, _actor(), rule_id=rule_id, name=form.name.data,
            category_id=int(form.category.data) if form.category.data else None,
            role=form.role.data or None, mode=form.mode.data, agent_ids=list(form.agents.data or []),
            position=form.position.data or 0, active=form.active.data)
    except assignment.AssignmentError as exc:
        db.session.rollback()
        for name, message in exc.field_errors.items():
            getattr(form, {"agent_ids": "agents"}.get(name, name)).errors = [_(message)]
        return None


@bp.route("/agent/assignment", methods=["GET", "POST"])
@supervisor_required
def assignment_rules():
    agents = _agents()
    form = RuleForm()
    _fill(form, agents)
    status = 200
    if request.method == "POST":
        if _save(form, None) is not None:
            flash(_("割当ルールを作成しました。"), "success")
            return redirect(url_for("tickets.assignment_rules"))
        status = 400
    rules = db.session.scalars(select(AssignmentRule).order_by(AssignmentRule.position, AssignmentRule.id)).all()
    names = {u.id: u.name for u in agents}
    categories = {c.id: c.label(_locale()) for c in _categories()}
    shifts = assignment.shift_states(db.session, [u.id for u in agents])
    load = assignment.active_load(db.session, [u.id for u in agents]) if agents else {}
    return render_template("tickets/assignment_rules.html", form=form, rules=rules, names=names,
                           categories=categories, agents=agents, shifts=shifts, load=load,
                           MODE_LABELS=MODE_LABELS, parse_ids=assignment.parse_agent_ids,
                           action_form=ShiftForm()), status


@bp.route("/agent/assignment/<int:rule_id>", methods=["GET", "POST"])
@supervisor_required
def assignment_rule_edit(rule_id: int):
    rule = db.session.get(AssignmentRule, rule_id) or abort(404)
    agents = _agents()
    if request.method == "POST":
        form = RuleForm()
    else:
        form = RuleForm(name=rule.name, category=str(rule.category_id or ""), role=rule.role or "",
                        mode=rule.mode, agents=assignment.parse_agent_ids(rule.agent_ids),
                        position=rule.position, active=rule.active)
    _fill(form, agents)
    status = 200
    if request.method == "POST":
        if _save(form, rule.id) is not None:
            flash(_("割当ルールを更新しました。"), "success")
            return redirect(url_for("tickets.assignment_rules"))
        status = 400
    return render_template("tickets/assignment_rule_edit.html", form=form, rule=rule), status


@bp.post("/agent/assignment/<int:rule_id>/active")
@supervisor_required
def assignment_rule_active(rule_id: int):
    if not ShiftForm().validate():
        abort(400)
    wanted = request.form.get("active") == "1"
    if assignment.set_rule_active(db.session, _actor(), rule_id, wanted) is None:
        abort(404)
    flash(_("割当ルールを有効にしました。") if wanted else _("割当ルールを無効にしました。"), "success")
    return redirect(url_for("tickets.assignment_rules"))


@bp.post("/agent/assignment/shift/<int:user_id>")
@supervisor_required
def assignment_agent_shift(user_id: int):
    """A supervisor marks an agent on shift or absent (e.g. someone called in sick)."""
    if not ShiftForm().validate():
        abort(400)
    user = db.session.get(User, user_id)
    if user is None or not user.is_staff:
        abort(404)
    assignment.set_shift(db.session, _actor(), user.id, request.form.get("on_shift") == "1")
    flash(_("%(name)s さんの勤務状態を変更しました。", name=user.name), "success")
    return redirect(url_for("tickets.assignment_rules"))


@bp.route("/agent/shift", methods=["GET", "POST"])
@staff_required
def my_shift():
    form = ShiftForm()
    if request.method == "POST":
        if not form.validate():
            abort(400)
        value = request.form.get("on_shift") == "1"
        assignment.set_shift(db.session, _actor(), current_user.id, value)
        flash(_("勤務中にしました。自動割当の対象になります。") if value
              else _("不在にしました。自動割当の対象から外れます。"), "success")
        return redirect(url_for("tickets.my_shift"))
    return render_template("tickets/shift.html", form=form,
                           on_shift=assignment.on_shift(db.session, current_user.id))
