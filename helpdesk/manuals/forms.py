"""Forms of the manual pages."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError


class FeedbackForm(FlaskForm):
    helpful = RadioField(_l("この記事は役に立ちましたか？"), choices=[("yes", _l("はい")), ("no", _l("いいえ"))],
                         validators=[DataRequired(_l("「はい」か「いいえ」を選んでください。"))])
    comment = TextAreaField(_l("ご意見（任意）"), validators=[Optional(), Length(max=2000, message=_l(
        "ご意見は2000文字以内で入力してください。"))])


class LinkForm(FlaskForm):
    ticket_ref = StringField(_l("チケット番号"), validators=[
        DataRequired(_l("チケット番号を入力してください。")),
        Regexp(r"^\s*[Hh][Dd]-\d{1,12}\s*$", message=_l("チケット番号は HD-000123 の形で入力してください。"))])
    slug = StringField(_l("記事"), validators=[DataRequired(_l("記事を指定してください。")), Length(max=120)])
    resolved_by = BooleanField(_l("この記事で解決した"))


class DraftFromTicketsForm(FlaskForm):
    group_id = IntegerField(_l("繰り返しグループ"), validators=[Optional()])
    ticket_refs = TextAreaField(_l("解決済みチケットの番号（空白・改行区切り）"), validators=[Optional(), Length(max=2000)])

    def validate_ticket_refs(self, field):
        if not self.group_id.data and not (field.data or "").strip():
            raise ValidationError(_l("チケット番号を1件以上入力してください。"))


class DraftForm(FlaskForm):
    expected_version = HiddenField()
    slug = StringField(_l("スラッグ（URLの名前）"), validators=[
        DataRequired(_l("スラッグを入力してください。")), Length(max=120),
        Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", message=_l("スラッグは半角英小文字・数字・ハイフンで入力してください。"))])
    role = SelectField(_l("対象"), choices=[("common", _l("共通")), ("municipality", _l("自治体")),
                                          ("clinic", _l("医療機関")), ("wholesaler", _l("卸業者"))])
    tags = StringField(_l("タグ（読点・カンマ区切り）"), validators=[Optional(), Length(max=500)])
    title_ja = StringField(_l("タイトル（日本語）"), validators=[DataRequired(_l("タイトル（日本語）を入力してください。")),
                                                          Length(max=300)])
    body_ja = TextAreaField(_l("本文（日本語・Markdown）"), render_kw={"rows": 18}, validators=[DataRequired(_l("本文（日本語）を入力してください。")),
                                                                Length(max=50000)])
    title_en = StringField(_l("タイトル（英語）"), validators=[Optional(), Length(max=300)])
    body_en = TextAreaField(_l("本文（英語・Markdown）"), render_kw={"rows": 12}, validators=[Optional(), Length(max=50000)])

    def validate_expected_version(self, field):
        try:
            field.data = int(field.data) if field.data not in (None, "") else None
        except (TypeError, ValueError):
            field.data = None
