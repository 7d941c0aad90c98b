"""Caller look-up for the phone intake: who is on the line?

Agents type part of a name (kanji or kana, with or without the space between family and given
name), an e-mail address, a phone number (with or without hyphens, full-width digits work), an
organisation code or part of an organisation name. The query is NFKC-normalised and split on
spaces; every part must match one of those fields. Matches are ranked: exact code / e-mail /
phone first, then prefix matches, then substring matches.

On PostgreSQL the substring look-ups use the trigram indexes of POSTGRES_DDL (UTF-8 LC_CTYPE
database, like ticket search); without them it is a scan of the users table.
"""
from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, literal_column, or_, select, union

from helpdesk import audit
from helpdesk.accounts import kana
from helpdesk.accounts.models import Organisation, User
from helpdesk.audit import Actor
from helpdesk.i18n import lazy_join
from helpdesk.text import clean_input, normalize
from helpdesk.accounts.service import AccountError, create_user, find_user_by_email
from helpdesk.tickets.portal_forms import EMAIL_RE, phone_digits

#: Trigram indexes for the caller type-ahead (needs pg_trgm, see tickets/search.py). The users indexes
#: are the very ones of helpdesk.accounts.models.POSTGRES_DDL (same names, same expressions), so the
#: admin user search and this look-up share them; the expressions match _squash / _digits_sql below.
POSTGRES_DDL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_users_name_trgm ON users USING gin ((replace(lower(name), ' ', '')) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_users_email_trgm ON users USING gin (email gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_users_phone_trgm ON users USING gin ((replace(phone, '-', '')) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_organisations_name_trgm ON organisations USING gin "
    "((replace(lower(name), ' ', '')) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_organisations_code_trgm ON organisations USING gin ((lower(code)) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_users_name_kana_trgm ON users USING gin (name_kana gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_organisations_name_kana_trgm ON organisations USING gin (name_kana gin_trgm_ops)",
]

MAX_TOKENS = 4
CANDIDATES_PER_RESULT = 5


class ContactError(Exception):
    """Refused contact data; `field_errors` maps a form field name to a message."""

    def __init__(self, field_errors: dict[str, str]):
        super().__init__(lazy_join("; ", field_errors.values()))
        self.field_errors = field_errors


@dataclass
class Contact:
    id: int
    name: str
    email: str
    phone: str | None
    organisation_id: int | None
    organisation_code: str | None
    organisation_name: str | None
    organisation_kind: str | None
    needs_review: bool
    state: str
    score: int
    name_kana: str | None = None
    organisation_name_kana: str | None = None

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "email": "" if is_placeholder_email(self.email) else self.email,
                "phone": self.phone or "", "organisation_id": self.organisation_id,
                "organisation_code": self.organisation_code or "", "organisation_name": self.organisation_name or "",
                "organisation_kind": self.organisation_kind or "", "needs_review": self.needs_review,
                "state": self.state, "name_kana": self.name_kana or ""}


PLACEHOLDER_DOMAIN = "contacts.invalid"


def is_placeholder_email(email: str | None) -> bool:
    """Contacts created from a phone call without an e-mail get an undeliverable placeholder."""
    return bool(email) and email.endswith("@" + PLACEHOLDER_DOMAIN)


def _lit(value: str):
    # SQL literals, not bound parameters, so PostgreSQL matches the expression indexes above.
    return literal_column("'" + value.replace("'", "''") + "'")


def _squash(column):
    """lower(column) without spaces, in SQL (names are stored NFKC, so no ideographic spaces)."""
    return func.replace(func.lower(column), _lit(" "), _lit(""))


def _digits_sql(column):
    """The phone number without hyphens, in SQL."""
    return func.replace(column, _lit("-"), _lit(""))


def _like(column, value: str, prefix: bool = False):
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(("" if prefix else "%") + escaped + "%", escape="\\")


def _tokens(q: str) -> list[str]:
    return [t for t in normalize(q).split(" ") if t][:MAX_TOKENS]


def _token_clause(token: str):
    """One word as a filter over the join (for 1–2 character words, which no trigram index serves:
    walking the users newest first and stopping at the limit is faster than collecting every match)."""
    parts = [_like(_squash(User.name), token), _like(User.email, token), _like(func.lower(Organisation.code), token),
             _like(_squash(Organisation.name), token)]
    if kana.is_kana(token):
        parts += [_like(User.name_kana, kana.fold(token)), _like(Organisation.name_kana, kana.fold(token))]
    digits = re.sub(r"\D", "", token)
    if len(digits) >= 3 and re.fullmatch(r"[\d\-+]+", token):
        parts.append(_like(_digits_sql(User.phone), digits))
    return or_(*parts)


def _token_ids(token: str):
    """Ids of the users one word matches: their own fields, or their organisation's code or name.

    Two selects joined by UNION rather than one OR across the join, so each side can use its
    table's indexes.
    """
    own = [_like(_squash(User.name), token), _like(User.email, token)]
    digits = re.sub(r"\D", "", token)
    if len(digits) >= 3 and re.fullmatch(r"[\d\-+]+", token):
        own.append(_like(_digits_sql(User.phone), digits))
    org_parts = [_like(func.lower(Organisation.code), token), _like(_squash(Organisation.name), token)]
    if kana.is_kana(token):
        # タナカ / たなか / ﾀﾅｶ: the reading, folded to full-width katakana like the stored one.
        own.append(_like(User.name_kana, kana.fold(token)))
        org_parts.append(_like(Organisation.name_kana, kana.fold(token)))
    orgs = select(Organisation.id).where(or_(*org_parts))
    return union(select(User.id).where(or_(*own)), select(User.id).where(User.organisation_id.in_(orgs)))


def _score(contact: Contact, tokens: list[str]) -> int:
    name = normalize(contact.name).replace(" ", "")
    org_name = normalize(contact.organisation_name).replace(" ", "")
    code = (contact.organisation_code or "").lower()
    phone = re.sub(r"\D", "", contact.phone or "")
    reading, org_reading = contact.name_kana or "", contact.organisation_name_kana or ""
    score = 0
    for token in tokens:
        digits = re.sub(r"\D", "", token)
        folded = kana.fold(token) if kana.is_kana(token) else None
        if token in (contact.email, code) or (digits and len(digits) >= 6 and digits == phone):
            score += 100
        elif name.startswith(token) or contact.email.startswith(token) or code.startswith(token) or (
                folded and reading.startswith(folded)):
            score += 50
        elif org_name.startswith(token) or (folded and org_reading.startswith(folded)):
            score += 30
        elif token in name:
            score += 20
        else:
            score += 10
    if contact.state == "activated":
        score += 1
    return score


def search_contacts(session, q: str | None, limit: int = 10) -> list[Contact]:
    """Users matching every part of `q` in name, e-mail, phone, organisation code or name; best first."""
    tokens = _tokens(q or "")
    if not tokens or (len(tokens) == 1 and len(tokens[0]) < 1):
        return []
    limit = max(1, min(int(limit), 50))
    stmt = (select(User.id, User.name, User.email, User.phone, User.organisation_id, User.needs_review, User.state,
                   Organisation.code, Organisation.name, Organisation.kind, User.name_kana, Organisation.name_kana)
            .outerjoin(Organisation, Organisation.id == User.organisation_id)
            .where(User.state != "disabled",
                   *[User.id.in_(_token_ids(t)) if len(t) >= 3 else _token_clause(t) for t in tokens])
            .order_by(User.id.desc())
            .limit(limit * CANDIDATES_PER_RESULT))
    found = []
    for row in session.execute(stmt):
        contact = Contact(id=row[0], name=row[1], email=row[2], phone=row[3], organisation_id=row[4],
                          needs_review=bool(row[5]), state=row[6], organisation_code=row[7],
                          organisation_name=row[8], organisation_kind=row[9], score=0, name_kana=row[10],
                          organisation_name_kana=row[11])
        contact.score = _score(contact, tokens)
        found.append(contact)
    found.sort(key=lambda c: (-c.score, c.name, c.id))
    return found[:limit]


def find_organisation(session, code: str | None) -> Organisation | None:
    code = normalize(code).replace(" ", "")
    if not code:
        return None
    return session.scalar(select(Organisation).where(func.lower(Organisation.code) == code))


def create_contact(session, *, name: str, email: str | None, phone: str | None, org_code: str,
                   actor: Actor) -> User:
    """A new caller (requester) created during a call, flagged `needs_review`; no commit.

    Without an e-mail address the contact gets an undeliverable placeholder address
    (`…@contacts.invalid`), because the login id is required; an agent completes it on review.
    """
    errors: dict[str, str] = {}
    name = " ".join(clean_input(unicodedata.normalize("NFKC", name or ""), 200).split())
    email = (normalize(email) or "").replace(" ", "")
    phone = normalize(phone) or None
    if not name:
        errors["new_name"] = _l("新しい連絡先の氏名を入力してください。")
    if email and not EMAIL_RE.match(email):
        errors["new_email"] = _l("メールアドレスの形式が正しくありません（例: taro@city.example.jp）。")
    if not email and not phone:
        errors["new_email"] = _l("メールアドレスか電話番号のどちらかを入力してください。")
    if phone and len(phone_digits(phone).lstrip("+")) < 6:
        errors["new_phone"] = _l("電話番号は数字とハイフンで入力してください（例: 03-1234-5678）。")
    org = find_organisation(session, org_code)
    if org is None:
        errors["new_org_code"] = _l("組織コード「%(code)s」の組織が見つかりません。"
                                    "コードを確かめるか、組織名で発信者を検索してください。", code=clean_input(org_code, 32))
    if email and not errors.get("new_email"):
        existing = find_user_by_email(session, email)
        if existing is not None:
            errors["new_email"] = _l("このメールアドレスは既に登録されています（%(name)s）。"
                                     "上の検索で発信者として選んでください。", name=existing.name)
    if errors:
        raise ContactError(errors)
    if not email:
        email = f"tel{phone_digits(phone).lstrip('+')}.{secrets.token_hex(4)}@{PLACEHOLDER_DOMAIN}"
    try:
        user = create_user(session, email=email, name=name, organisation_id=org.id, roles="requester",
                           actor=actor, phone=phone, must_change_password=True, commit=False)
    except AccountError as exc:
        raise ContactError({"new_email": str(exc)})
    user.needs_review = True
    user.name_kana = kana.guess(name)
    audit.record(session, actor, "contact.created_from_call", "user", user.id,
                 {"organisation": org.code, "has_email": not is_placeholder_email(email), "has_phone": bool(phone)})
    return user
