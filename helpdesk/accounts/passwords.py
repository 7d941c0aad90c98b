"""Password hashing (argon2id) and the password policy."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import lazy_gettext as _l

_hasher = PasswordHasher()
# A fixed hash to verify against when the account does not exist, so timing does not reveal it.
_DUMMY = _hasher.hash("dummy-password-for-timing")

MIN_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def policy_errors(password: str, email: str = "") -> list[str]:
    """Plain-language reasons a new password is refused (empty list = acceptable)."""
    errors = []
    if len(password) < MIN_LENGTH:
        errors.append(_l("パスワードは%(n)s文字以上にしてください。", n=MIN_LENGTH))
    if len(password) > 128:
        errors.append(_l("パスワードは128文字以内にしてください。"))
    kinds = sum([any(c.islower() for c in password), any(c.isupper() for c in password),
                 any(c.isdigit() for c in password), any(not c.isalnum() for c in password)])
    if kinds < 3:
        errors.append(_l("英大文字・英小文字・数字・記号のうち3種類以上を使ってください。"))
    if email and email.split("@")[0].lower() in password.lower() and len(email.split("@")[0]) >= 4:
        errors.append(_l("ログインIDを含むパスワードは使えません。"))
    return errors
