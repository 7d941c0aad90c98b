"""Admin forms: API tokens and webhook subscriptions."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms import widgets
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from helpdesk.api.models import SCOPES, WEBHOOK_EVENTS

SCOPE_LABELS = {"read": _l("read（参照）"), "tickets:write": _l("tickets:write（チケットの登録・更新・返信）"),
                "problems:write": _l("problems:write（問題へのチケット紐づけ）"), "admin": _l("admin（すべて）")}


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class TokenForm(FlaskForm):
    name = StringField(_l("名前（連携先が分かる名前）"),
                       validators=[DataRequired(_l("名前を入力してください。")), Length(max=100)])
    user_email = StringField(_l("紐づける利用者のログインID"),
                             validators=[DataRequired(_l("利用者のログインIDを入力してください。")), Length(max=254)],
                             render_kw={"inputmode": "email", "autocomplete": "off"})
    scopes = CheckboxesField(_l("権限（スコープ）"), choices=[(s, SCOPE_LABELS[s]) for s in SCOPES],
                             validators=[DataRequired(_l("権限を1つ以上選んでください。"))])
    expires_in_days = IntegerField(_l("有効期限（日数、空欄は無期限）"),
                                   validators=[Optional(), NumberRange(1, 3650, _l("1〜3650の数字で入力してください。"))])


class WebhookForm(FlaskForm):
    name = StringField(_l("名前"), validators=[DataRequired(_l("名前を入力してください。")), Length(max=100)])
    url = StringField(_l("送信先URL"), validators=[DataRequired(_l("URLを入力してください。")), Length(max=2000)],
                      render_kw={"inputmode": "url", "placeholder": "https://"})
    events = CheckboxesField(_l("イベント"), choices=[(e, e) for e in WEBHOOK_EVENTS],
                             validators=[DataRequired(_l("イベントを1つ以上選んでください。"))])
    description = TextAreaField(_l("メモ（任意）"), validators=[Optional(), Length(max=2000)])
