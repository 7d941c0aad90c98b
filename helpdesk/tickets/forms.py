"""Forms of the agent queue, the ticket page and the macro admin page.

Choices that come from the database (categories, agents, macros) are filled in by the views.
Every form that changes a ticket carries the `version` it was rendered with (optimistic locking)
and `seen_event` (the last timeline event the agent saw, to show what changed on a conflict).
"""
from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, HiddenField, IntegerField, RadioField, SelectField, StringField,
                     TextAreaField)
from wtforms.widgets import HiddenInput
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from helpdesk.tickets.models import PRIORITIES, STATUSES
from helpdesk.templating import STATUS_LABELS

REF_RE = r"^\s*[Hh][Dd]-\d{1,12}\s*$"
REF_MESSAGE = _l("チケット番号を HD-000123 の形式で入力してください。")


def status_choices(blank: str | None = None):
    choices = [(s, STATUS_LABELS[s]) for s in STATUSES]
    return ([("", blank)] + choices) if blank is not None else choices


class _Versioned(FlaskForm):
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    seen_event = IntegerField(widget=HiddenInput(), validators=[Optional()])


class _MinutesField(IntegerField):
    """Whole minutes; anything else gets the one plain message (not WTForms' English one)."""

    def process_formdata(self, valuelist):
        if valuelist and (valuelist[0] or "").strip():
            raw = unicodedata.normalize("NFKC", valuelist[0]).strip()
            if not raw.isdigit():
                self.data = None
                raise ValueError(_l("作業時間は1〜1440の分数で入力してください。"))
            valuelist = [raw]
        super().process_formdata(valuelist)


class ReplyForm(_Versioned):
    body = TextAreaField(_l("返信・メモ"), validators=[DataRequired(_l("本文を入力してください。")), Length(max=100_000)],
                         render_kw={"rows": 8})
    visibility = RadioField(_l("種類"), choices=[("public", _l("お客様への返信（公開）")),
                                               ("internal", _l("内部メモ（担当者のみ）"))],
                            default="public", validators=[InputRequired(_l("返信か内部メモかを選んでください。"))])
    macro = SelectField(_l("マクロ（定型文）"), coerce=str, validators=[Optional()], choices=[])
    status_after = SelectField(_l("送信後のステータス"), validators=[Optional()], choices=[])
    minutes = _MinutesField(_l("作業時間（分、任意）"), validators=[
        Optional(), NumberRange(min=1, max=1440, message=_l("作業時間は1〜1440の分数で入力してください。"))])


class FieldsForm(_Versioned):
    priority = SelectField(_l("優先度"), choices=[(p, p) for p in PRIORITIES])
    category = SelectField(_l("カテゴリ"), choices=[])
    status = SelectField(_l("ステータス"), choices=[])
    assignee = SelectField(_l("担当者"), choices=[])


class EscalateForm(_Versioned):
    tier = SelectField(_l("エスカレーション先"), choices=[("L2", _l("L2（専門担当）")), ("dev", _l("開発"))])
    reason = TextAreaField(_l("理由"), validators=[DataRequired(_l("エスカレーションの理由を入力してください。")),
                                                 Length(max=2000)], render_kw={"rows": 3})


class TagForm(FlaskForm):
    tag = StringField(_l("タグを追加"), validators=[DataRequired(_l("タグを入力してください。")), Length(max=50)])


class RemoveTagForm(FlaskForm):
    tag = HiddenField(validators=[DataRequired()])


class MergeForm(_Versioned):
    target = StringField(_l("統合先のチケット番号"), validators=[DataRequired(REF_MESSAGE), Regexp(REF_RE, message=REF_MESSAGE)],
                         render_kw={"placeholder": "HD-000123", "autocomplete": "off"})


class LinkForm(FlaskForm):
    other = StringField(_l("関連チケット番号"), validators=[DataRequired(REF_MESSAGE), Regexp(REF_RE, message=REF_MESSAGE)],
                        render_kw={"placeholder": "HD-000123", "autocomplete": "off"})


class BulkForm(FlaskForm):
    action = SelectField(_l("一括操作"), choices=[
        ("assign", _l("担当者を設定")), ("status", _l("ステータスを変更")), ("priority", _l("優先度を変更")),
        ("category", _l("カテゴリを変更")), ("tag", _l("タグを追加")), ("merge", _l("チケットに統合"))])
    value = StringField(_l("設定する値"), validators=[Optional(), Length(max=100)],
                        description=_l("担当者ID、ステータス（open など）、優先度（P1〜P4）、カテゴリコード、タグ、統合先（HD-000123）"))
    back = HiddenField()


class SavedViewForm(FlaskForm):
    name = StringField(_l("ビューの名前"), validators=[DataRequired(_l("名前を入力してください。")), Length(max=100)])
    query = HiddenField(validators=[Length(max=1000)])


class MacroForm(FlaskForm):
    title = StringField(_l("名前"), validators=[DataRequired(_l("名前を入力してください。")), Length(max=200)])
    body = TextAreaField(_l("本文"), validators=[DataRequired(_l("本文を入力してください。")), Length(max=20_000)],
                         render_kw={"rows": 8},
                         description=_l("差し込み: {requester_name} {ref} {agent_name} {organisation_name} {subject}"))
    set_status = SelectField(_l("適用後のステータス"), choices=[], validators=[Optional()])
    set_category = SelectField(_l("適用後のカテゴリ"), choices=[], validators=[Optional()])
    active = BooleanField(_l("有効"), default=True)


class DeleteForm(FlaskForm):
    """CSRF-only form for delete buttons."""
