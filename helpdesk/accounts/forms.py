"""Account forms."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length
from helpdesk.templating import USER_ROLE_LABELS


class LoginForm(FlaskForm):
    email = StringField(_l("ログインID（メールアドレス）"),
                        validators=[DataRequired(_l("ログインIDを入力してください。")), Length(max=254)],
                        render_kw={"autocomplete": "username", "inputmode": "email"})
    password = PasswordField(_l("パスワード"), validators=[DataRequired(_l("パスワードを入力してください。")),
                                                       Length(max=128)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("現在のパスワード"),
                                     validators=[DataRequired(_l("現在のパスワードを入力してください。"))],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("新しいパスワード"),
                                 validators=[DataRequired(_l("新しいパスワードを入力してください。")), Length(max=128)],
                                 render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("新しいパスワード（確認）"),
                            validators=[DataRequired(_l("確認のため、もう一度入力してください。")),
                                        EqualTo("new_password", _l("確認用のパスワードが一致しません。"))],
                            render_kw={"autocomplete": "new-password"})


class ResetRequestForm(FlaskForm):
    email = EmailField(_l("ログインID（メールアドレス）"),
                       validators=[DataRequired(_l("メールアドレスを入力してください。")), Length(max=254)],
                       render_kw={"autocomplete": "email"})


class ResetForm(FlaskForm):
    new_password = PasswordField(_l("新しいパスワード"),
                                 validators=[DataRequired(_l("新しいパスワードを入力してください。")), Length(max=128)],
                                 render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("新しいパスワード（確認）"),
                            validators=[DataRequired(_l("確認のため、もう一度入力してください。")),
                                        EqualTo("new_password", _l("確認用のパスワードが一致しません。"))],
                            render_kw={"autocomplete": "new-password"})


__all__ = ["LoginForm", "ChangePasswordForm", "ResetRequestForm", "ResetForm", "BooleanField", "StringField"]


# --------------------------------------------------------------------------- administration

from wtforms import SelectField, SelectMultipleField  # noqa: E402
from wtforms import widgets as _widgets  # noqa: E402
from wtforms.validators import Optional, Regexp  # noqa: E402

from helpdesk.common import ORG_KINDS, PREFECTURES, USER_ROLES  # noqa: E402


class MultiCheckboxField(SelectMultipleField):
    widget = _widgets.ListWidget(prefix_label=False)
    option_widget = _widgets.CheckboxInput()


def _role_choices():
    return [(r, USER_ROLE_LABELS[r]) for r in USER_ROLES]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class UserForm(FlaskForm):
    email = StringField(_l("メールアドレス（ログインID）"), filters=[_strip],
                        validators=[DataRequired(_l("メールアドレスを入力してください。")), Length(max=254),
                                    Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                                           message=_l("メールアドレスの形式が正しくありません。"))],
                        render_kw={"autocomplete": "off", "inputmode": "email"})
    name = StringField(_l("氏名"), filters=[_strip], validators=[DataRequired(_l("氏名を入力してください。")), Length(max=200)])
    phone = StringField(_l("電話番号"), filters=[_strip], validators=[Optional(), Length(max=40),
                                                Regexp(r"^[0-9０-９+()（）\- ー－]*$",
                                                       message=_l("電話番号は数字とハイフンで入力してください。"))],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    org_code = StringField(_l("組織コード"), filters=[_strip], validators=[Optional(), Length(max=32)],
                           description=_l("ヘルプデスク職員は空欄"))
    roles = MultiCheckboxField(_l("権限"), choices=_role_choices, validate_choice=True)
    locale = SelectField(_l("表示言語"), choices=[("ja", "日本語"), ("en", "English")], default="ja")


class OrganisationForm(FlaskForm):
    code = StringField(_l("組織コード"), validators=[DataRequired(_l("組織コードを入力してください。")), Length(max=32)])
    name = StringField(_l("組織名"), validators=[DataRequired(_l("組織名を入力してください。")), Length(max=200)])
    kind = SelectField(_l("組織区分"), choices=[(k, k) for k in ORG_KINDS])
    prefecture = SelectField(_l("都道府県"), choices=[("", "—")] + [(p, p) for p in PREFECTURES],
                             validate_choice=True)
    parent_code = StringField(_l("所属自治体コード（医療機関のみ）"), validators=[Optional(), Length(max=32)])
