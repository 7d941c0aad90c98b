"""Forms of the phone intake screen, the requester portal and the agents' attachment upload.

Category choices come from the database and are filled in by the views. Every form that creates
a ticket carries a one-time `nonce` (a second post of the same form creates nothing).
"""
from __future__ import annotations

import re
import secrets

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import BooleanField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp, ValidationError

from helpdesk.text import normalize
from helpdesk.tickets.models import PRIORITIES

NONCE_RE = r"^[A-Za-z0-9_-]{20,64}$"
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?[0-9()\- ]{6,24}$")


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def phone_digits(value: str | None) -> str:
    """'０３－1234-5678' → '0312345678' (NFKC, digits and a leading + only)."""
    value = normalize(value)
    return ("+" if value.startswith("+") else "") + re.sub(r"\D", "", value)


class _Nonce:
    nonce = HiddenField(validators=[DataRequired(_l("フォームの有効期限が切れました。ページを開き直してください。")),
                                    Regexp(NONCE_RE, message=_l("フォームの有効期限が切れました。ページを開き直してください。"))])


class IntakeForm(_Nonce, FlaskForm):
    """One phone call: who called, what about, and whether it was solved on the call."""

    caller_search = StringField(_l("発信者を検索"), validators=[Optional(), Length(max=100)],
                                render_kw={"autocomplete": "off", "spellcheck": "false"})
    caller_id = HiddenField(validators=[Optional(), Regexp(r"^\d{1,12}$")])
    new_name = StringField(_l("氏名"), validators=[Optional(), Length(max=200)], render_kw={"autocomplete": "off"})
    new_email = StringField(_l("メールアドレス"), validators=[Optional(), Length(max=254)],
                            render_kw={"autocomplete": "off", "inputmode": "email"})
    new_phone = StringField(_l("電話番号"), validators=[Optional(), Length(max=40)],
                            render_kw={"autocomplete": "off", "inputmode": "tel"})
    new_org_code = StringField(_l("組織コード"), validators=[Optional(), Length(max=32)],
                               render_kw={"autocomplete": "off"})
    subject = StringField(_l("件名"), validators=[DataRequired(_l("件名を入力してください。")), Length(max=300)],
                          render_kw={"autocomplete": "off"})
    description = TextAreaField(_l("お問い合わせ内容"), validators=[Optional(), Length(max=100_000)],
                                render_kw={"rows": 6})
    answer = TextAreaField(_l("お客様への回答・案内（任意）"), validators=[Optional(), Length(max=100_000)],
                           render_kw={"rows": 4})
    category = SelectField(_l("カテゴリ"), choices=[], validators=[Optional()])
    priority = SelectField(_l("優先度"), choices=[(p, p) for p in PRIORITIES], default="P3",
                           validators=[Optional()])  # missing = the default P3
    resolved_on_call = BooleanField(_l("通話中に解決した（一次解決）"))
    call_started_at = HiddenField(validators=[Optional(), Regexp(r"^\d{10,15}$")])

    def validate_new_email(self, field):
        if field.data and not EMAIL_RE.match(field.data.strip()):
            raise ValidationError(_l("メールアドレスの形式が正しくありません（例: taro@city.example.jp）。"))

    def validate_new_phone(self, field):
        if field.data and not PHONE_RE.match(normalize(field.data)):
            raise ValidationError(_l("電話番号は数字とハイフンで入力してください（例: 03-1234-5678）。"))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.caller_id.data:
            return ok
        new_values = [self.new_name.data, self.new_email.data, self.new_phone.data, self.new_org_code.data]
        if not any((v or "").strip() for v in new_values):
            self.caller_search.errors = list(self.caller_search.errors) + [
                _l("発信者を検索して一覧から選ぶか、「新しい連絡先」に氏名・連絡先・組織コードを入力してください。")]
            return False
        if not (self.new_name.data or "").strip():
            self.new_name.errors = list(self.new_name.errors) + [_l("新しい連絡先の氏名を入力してください。")]
            ok = False
        if not (self.new_email.data or "").strip() and not (self.new_phone.data or "").strip():
            self.new_email.errors = list(self.new_email.errors) + [
                _l("メールアドレスか電話番号のどちらかを入力してください。")]
            ok = False
        if not (self.new_org_code.data or "").strip():
            self.new_org_code.errors = list(self.new_org_code.errors) + [
                _l("所属する組織のコード（自治体コード・医療機関番号など）を入力してください。")]
            ok = False
        return ok


class AppendCallForm(_Nonce, FlaskForm):
    """Add the call notes of the intake form to an existing ticket instead of opening a new one."""

    target = HiddenField(validators=[DataRequired(), Regexp(r"^\s*[Hh][Dd]-\d{1,12}\s*$")])
    description = TextAreaField(validators=[Optional(), Length(max=100_000)])
    answer = TextAreaField(validators=[Optional(), Length(max=100_000)])
    subject = StringField(validators=[Optional(), Length(max=300)])
    caller_id = HiddenField(validators=[Optional(), Regexp(r"^\d{1,12}$")])
    call_started_at = HiddenField(validators=[Optional(), Regexp(r"^\d{10,15}$")])


class PortalNewForm(_Nonce, FlaskForm):
    subject = StringField(_l("件名（ひとことで）"), validators=[DataRequired(_l("件名を入力してください。")),
                                                            Length(max=300, message=_l("件名は300文字以内で入力してください。"))],
                          render_kw={"autocomplete": "off"})
    description = TextAreaField(_l("内容（できるだけ詳しく）"),
                                validators=[DataRequired(_l("どんなことでお困りか入力してください。")),
                                            Length(max=100_000)], render_kw={"rows": 8})
    category = SelectField(_l("お問い合わせの種類"), choices=[], validators=[Optional()])
    files = MultipleFileField(_l("添付ファイル（任意）"))


class PortalReplyForm(FlaskForm):
    body = TextAreaField(_l("返信"), validators=[DataRequired(_l("返信の内容を入力してください。")), Length(max=100_000)],
                         render_kw={"rows": 5})
    files = MultipleFileField(_l("添付ファイル（任意）"))


class PortalCloseForm(FlaskForm):
    action = HiddenField(validators=[DataRequired(), Regexp(r"^(resolve|close)$")])


class CsatForm(FlaskForm):
    score = RadioField(_l("今回の対応の満足度"), coerce=int,
                       choices=[(5, _l("5 とても満足")), (4, _l("4 満足")), (3, _l("3 ふつう")),
                                (2, _l("2 不満")), (1, _l("1 とても不満"))],
                       validators=[InputRequired(_l("満足度を1〜5から選んでください。"))])
    comment = TextAreaField(_l("ご意見（任意）"), validators=[Optional(), Length(max=2000)], render_kw={"rows": 3})


class AgentUploadForm(FlaskForm):
    files = MultipleFileField(_l("ファイルを添付"))
    visibility = RadioField(_l("公開範囲"), choices=[("internal", _l("内部メモとして（担当者のみ）")),
                                                 ("public", _l("お客様に公開"))],
                            default="internal", validators=[InputRequired(_l("公開範囲を選んでください。"))])
    note = StringField(_l("ひとこと（任意）"), validators=[Optional(), Length(max=2000)])
