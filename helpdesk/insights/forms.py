"""Forms of the insights pages (validation only; the service holds the rules)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from helpdesk.insights.models import PROBLEM_STATUSES
from helpdesk.tickets.models import parse_ref


class PromoteForm(FlaskForm):
    title = StringField(_l("問題の件名（空欄ならグループ名）"), validators=[Optional(), Length(max=200)])


class ProblemForm(FlaskForm):
    title = StringField(_l("件名"), validators=[DataRequired(_l("件名を入力してください。")), Length(max=200)])
    description = TextAreaField(_l("説明"), validators=[Optional(), Length(max=20000)])
    workaround = TextAreaField(_l("回避策（該当チケットへの定型返信）"), validators=[Optional(), Length(max=5000)])
    version = HiddenField()


class NewProblemForm(FlaskForm):
    title = StringField(_l("件名"), validators=[DataRequired(_l("件名を入力してください。")), Length(max=200)])
    description = TextAreaField(_l("説明"), validators=[Optional(), Length(max=20000)])
    tickets = TextAreaField(_l("チケット番号（HD-000123 の形、空白・改行・カンマ区切り）"),
                            validators=[Optional(), Length(max=5000)])

    def validate_tickets(self, field):
        bad = [t for t in _split_refs(field.data) if parse_ref(t) is None]
        if bad:
            raise ValidationError(_l("チケット番号の形ではありません: %(refs)s", refs=", ".join(bad[:5])))


def _split_refs(text: str | None) -> list[str]:
    import re

    return [t for t in re.split(r"[\s,、，]+", (text or "").strip()) if t]


class TransitionForm(FlaskForm):
    to = SelectField(_l("新しい状態"), choices=[(s, s) for s in PROBLEM_STATUSES],
                     validators=[DataRequired(_l("状態を選んでください。"))])
    fixed_on = DateField(_l("修正のリリース日（「修正済み」にするとき）"), validators=[Optional()],
                         format="%Y-%m-%d")
    version = HiddenField()


class SendForm(FlaskForm):
    version = HiddenField()


class LinkForm(FlaskForm):
    ticket = StringField(_l("チケット番号"), validators=[DataRequired(_l("チケット番号を入力してください。")),
                                                     Length(max=20)])

    def validate_ticket(self, field):
        if parse_ref(field.data or "") is None:
            raise ValidationError(_l("「HD-000123」の形で入力してください。"))


class EmptyForm(FlaskForm):
    """A form with only the CSRF token (buttons that post)."""

