"""Forms of the manual pages."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp


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
