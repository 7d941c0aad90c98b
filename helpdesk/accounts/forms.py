"""Account forms."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length


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
