"""Bulk import of users and their organisations from a CSV file (100k lines in seconds).

Columns: email,name,org_code,org_name,org_kind,prefecture,roles (header required; extra columns ignored,
an optional `parent_code` column names a clinic's municipality; optional `name_kana` / `org_name_kana` give
the readings of the names in kana — without them the reading is guessed by the tokenizer, accounts/kana.py). UTF-8 with or without BOM, or Shift_JIS
(cp932, as Excel writes it in Japan).

The import runs in three steps: every line is validated in Python (errors are collected with their line
number, a bad line writes nothing); the organisations of the valid lines are upserted (municipalities
first, so clinics can point at them); then the users are inserted / updated in chunks with
`INSERT ... ON CONFLICT` and executemany UPDATEs. Everything is one transaction with one audit row.
"""
from __future__ import annotations

import csv
import io
import re
import secrets
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from helpdesk import audit
from helpdesk.accounts import kana
from helpdesk.accounts.models import Organisation, User
from helpdesk.audit import Actor
from helpdesk.common import ORG_KINDS, PREFECTURES, USER_ROLES, utcnow
from helpdesk.templating import ROLE_LABELS
from helpdesk.common import csv_safe

COLUMNS = ("email", "name", "org_code", "org_name", "org_kind", "prefecture", "roles")
CHUNK = 5000
#: Roles the import may grant; admin rights are only given on the admin screen, one person at a time.
IMPORTABLE_ROLES = tuple(r for r in USER_ROLES if r != "admin")

_EMAIL = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
_ORG_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_ROLE_SPLIT = re.compile(r"[\s;|/、,]+")
_SPACES = re.compile(r"\s+")
_PREF_BY_STEM = {p[:-1] if p != "北海道" else p: p for p in PREFECTURES}

KIND_ALIASES = {"自治体": "municipality", "市区町村": "municipality", "医療機関": "clinic", "卸業者": "wholesaler",
                "卸": "wholesaler"}
ROLE_ALIASES = {"利用者": "requester", "オペレーター": "agent", "専門担当": "specialist",
                "スーパーバイザー": "supervisor", "プロダクトオーナー": "product_owner"}


class ImportFileError(Exception):
    """The file as a whole cannot be read (encoding, missing header columns)."""


@dataclass
class Line:
    line: int
    email: str
    name: str
    org_code: str
    org_name: str
    org_kind: str
    prefecture: str | None
    roles: str
    parent_code: str | None
    #: Readings (folded katakana) given in the file, or None (then guessed).
    name_kana: str | None = None
    org_name_kana: str | None = None


@dataclass
class ImportResult:
    encoding: str = ""
    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    orgs_created: int = 0
    orgs_updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    #: (email, name, org_code, password) for new users when initial passwords were asked for.
    passwords: list[tuple[str, str, str, str]] = field(default_factory=list)
    dry_run: bool = False
    #: Every organisation whose name the file changes (never capped: a rename is never silent):
    #: {"code", "kind", "old", "new", "users"} with the number of users already in it.
    org_renames: list[dict] = field(default_factory=list)
    #: Up to `details` rows each, when asked for (the browser's dry run): new organisations
    #: {"code", "name", "kind"}, new users {"line", "email", "name", "org", "roles"} and changed users
    #: {"line", "email", "old_name", "new_name", "old_org", "new_org", "old_roles", "new_roles", "old_kana",
    #: "new_kana"}.
    orgs_new: list[dict] = field(default_factory=list)
    created_users: list[dict] = field(default_factory=list)
    updated_users: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len({line for line, _ in self.errors})

    def counts(self) -> dict:
        return {"lines": self.lines, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "failed": self.failed, "organisations_created": self.orgs_created,
                "organisations_updated": self.orgs_updated, "organisations_renamed": len(self.org_renames),
                "encoding": self.encoding}


# --------------------------------------------------------------------------- reading

def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding label): UTF-8 (with or without BOM) first, then Shift_JIS (cp932)."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "UTF-8 (BOM)"
        except UnicodeDecodeError as exc:
            raise ImportFileError(_l("UTF-8 の BOM がありますが、%(byte)s バイト目が UTF-8 として読めません。",
                                     byte=exc.start)) from exc
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "Shift_JIS (cp932)"
    except UnicodeDecodeError as exc:
        raise ImportFileError(_l("文字コードを判別できません。UTF-8 または Shift_JIS（cp932）で保存してください"
                                 "（%(byte)s バイト目が読めません）。", byte=exc.start)) from exc


def read_rows(text: str) -> tuple[list[str], Iterable[tuple[int, dict[str, str]]]]:
    """Parse CSV text; returns the header and (line number, row) pairs. Line numbers count the header as 1."""
    text = text.replace("\x00", "")  # NUL would end the csv module's field; the line then fails validation
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(_l("ファイルが空です。1行目に見出し（%(columns)s）が必要です。",
                                 columns=",".join(COLUMNS))) from None
    header = [unicodedata.normalize("NFKC", h).strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ImportFileError(_l("1行目の見出しに次の列がありません: %(missing)s（必要な列: %(columns)s）",
                                 missing=", ".join(missing), columns=",".join(COLUMNS)))

    def rows():
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header) and any(v.strip() for v in values[len(header):]):
                yield line, None  # more cells than columns: a stray comma
                continue
            yield line, dict(zip(header, values + [""] * (len(header) - len(values))))

    return header, rows()


#: Unicode category Cc (C0, DEL, C1): what text.clean_input drops, as one regex (fast on 100k lines).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _norm(value: str | None, max_len: int = 500) -> str:
    """NFKC, control characters to spaces, whitespace collapsed (newlines and tabs too: one CSV cell is one line)."""
    if not value:
        return ""
    if value.isascii():  # most cells (e-mail, codes, kinds): NFKC changes nothing, whitespace is a space
        if not value.isprintable():
            value = _SPACES.sub(" ", _CONTROL.sub(" ", value))
        elif "  " in value:
            value = _SPACES.sub(" ", value)
        return value.strip()[:max_len + 1]
    value = unicodedata.normalize("NFKC", _CONTROL.sub(" ", value))
    return _SPACES.sub(" ", value).strip()[:max_len + 1]


def validate_row(line: int, row: dict[str, str] | None) -> tuple[Line | None, list[str]]:
    """Check one row; return the cleaned line or the plain-language reasons it was refused."""
    if row is None:
        return None, [_l("列の数が見出しより多くなっています（カンマの入った値は \"\" で囲んでください）。")]
    errors: list[str] = []
    email = _norm(row.get("email")).lower()
    if not email:
        errors.append(_l("メールアドレス（email）が空です。"))
    elif len(email) > 254 or not _EMAIL.match(email):
        errors.append(_l("メールアドレスの形式が正しくありません: %(email)s", email=email[:80]))
    name = _norm(row.get("name"))
    if not name:
        errors.append(_l("氏名（name）が空です。"))
    elif len(name) > 200:
        errors.append(_l("氏名（name）が長すぎます（200文字まで）。"))
    org_code = _norm(row.get("org_code"))
    kind_raw = _norm(row.get("org_kind"))
    kind = KIND_ALIASES.get(kind_raw, kind_raw.lower())
    if kind not in ORG_KINDS:
        errors.append(_l("組織区分（org_kind）「%(kind)s」は使えません。municipality / clinic / wholesaler の"
                         "いずれかにしてください。", kind=kind_raw[:40]) if kind_raw else
                      _l("組織区分（org_kind）が空です。municipality / clinic / wholesaler のいずれかを入れてください。"))
    if not org_code:
        errors.append(_l("組織コード（org_code）が空です。"))
    elif not _ORG_CODE.match(org_code):
        errors.append(_l("組織コード（org_code）「%(code)s」は英数字・ハイフン32文字以内にしてください。", code=org_code[:40]))
    elif kind == "municipality" and not (len(org_code) == 6 and org_code.isdigit()):
        errors.append(_l("自治体の組織コード「%(code)s」は6桁の数字（全国地方公共団体コード）にしてください。", code=org_code))
    org_name = _norm(row.get("org_name"))
    if len(org_name) > 200:
        errors.append(_l("組織名（org_name）が長すぎます（200文字まで）。"))
    pref_raw = _norm(row.get("prefecture"))
    prefecture = None
    if pref_raw:
        prefecture = pref_raw if pref_raw in PREFECTURES else _PREF_BY_STEM.get(pref_raw)
        if prefecture is None:
            errors.append(_l("都道府県（prefecture）「%(value)s」が分かりません（例: 東京都、大阪府、北海道）。",
                                 value=pref_raw[:20]))
    elif kind == "municipality":
        errors.append(_l("自治体の都道府県（prefecture）が空です。"))
    parent_code = _norm(row.get("parent_code")) or None
    if kind == "clinic" and org_code and parent_code is None:
        if len(org_code) == 10 and org_code.isdigit():
            parent_code = org_code[:6]
        else:
            errors.append(_l("医療機関の組織コード「%(code)s」から所属自治体が分かりません。"
                             "「自治体コード6桁＋4桁」の10桁にするか、parent_code 列に自治体コードを入れてください。",
                             code=org_code[:40]))
    if kind != "clinic":
        parent_code = None
    roles_raw = _norm(row.get("roles"))
    roles: list[str] = []
    for token in _ROLE_SPLIT.split(roles_raw):
        if not token:
            continue
        role = ROLE_ALIASES.get(token, token.lower())
        if role == "admin":
            errors.append(_l("管理者（admin）の権限は一括登録では付与できません。管理画面で付与してください。"))
        elif role not in IMPORTABLE_ROLES:
            errors.append(_l("権限（roles）「%(role)s」は使えません。使える値: %(allowed)s", role=token[:30],
                                 allowed=", ".join(IMPORTABLE_ROLES)))
        elif role not in roles:
            roles.append(role)
    if errors:
        return None, errors
    readings = {}
    for key, label in (("name_kana", _l("氏名の読み（name_kana）")), ("org_name_kana", _l("組織名の読み（org_name_kana）"))):
        try:
            readings[key] = kana.normalize_reading(_norm(row.get(key)))
        except ValueError:
            errors.append(_l("%(label)sはひらがなかカタカナで入力してください: %(value)s", label=label,
                             value=_norm(row.get(key))[:40]))
    if errors:
        return None, errors
    return Line(line, email, name, org_code, org_name, kind, prefecture, " ".join(roles or ["requester"]),
                parent_code, readings["name_kana"], readings["org_name_kana"]), []


# --------------------------------------------------------------------------- writing

def _insert(session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def bulk_insert(session, model, rows: list[dict], conflict: str) -> None:
    """Insert rows, skipping those whose `conflict` column already exists.

    PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING
    (set-based: one statement for 100k rows). Elsewhere: executemany in chunks with ON CONFLICT.
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        insert = _insert(session)
        for part in _chunks(rows):
            session.execute(insert(model.__table__).on_conflict_do_nothing(index_elements=[conflict]), part)
        return
    table = model.__table__.name
    columns = list(rows[0])
    cols = ", ".join(columns)
    raw = session.connection().connection.driver_connection
    tmp = f"tmp_import_{table}"
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE {tmp} ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA")
        with cur.copy(f"COPY {tmp} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {tmp} ON CONFLICT ({conflict}) DO NOTHING")
        cur.execute(f"DROP TABLE {tmp}")


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _matching(session, column, values: list):
    """`column IN values`, in chunks; on PostgreSQL one `= ANY(array)` parameter per 50,000 values: a list of
    thousands of bind parameters costs more to compile and send than the lookup itself (100k e-mails: 6 s → 1 s)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        item_type = column.type
        for part in _chunks(values, 50_000):
            yield column == any_(bindparam(None, part, type_=ARRAY(item_type)))
        return
    for part in _chunks(values):
        yield column.in_(part)


def _existing_orgs(session, codes: list[str]) -> dict[str, tuple]:
    found = {}
    for where in _matching(session, Organisation.code, codes):
        for row in session.execute(select(Organisation.id, Organisation.code, Organisation.name, Organisation.kind,
                                          Organisation.prefecture, Organisation.parent_id, Organisation.name_kana)
                                   .where(where)):
            found[row.code] = row
    return found


def _existing_users(session, emails: list[str]) -> dict[str, tuple]:
    found = {}
    for where in _matching(session, User.email, emails):
        for row in session.execute(select(User.id, User.email, User.name, User.roles, User.organisation_id,
                                          User.name_kana).where(where)):
            found[row.email] = row
    return found


_PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def generate_initial_password(length: int = 12) -> str:
    """A random initial password without look-alike characters, meeting the policy (letters + digits)."""
    while True:
        value = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in value) and any(c.isupper() for c in value) and any(c.islower() for c in value):
            return value


def _hash_initial(password: str) -> str:
    # OWASP's minimum argon2id parameters: the password must be changed at first login, where it is rehashed
    # with the full parameters; the lighter cost makes issuing thousands of letters practical.
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(password)


def hash_many(passwords: list[str], workers: int | None = None) -> list[str]:
    """Hash passwords in a process pool (argon2 is CPU-bound and deliberately slow)."""
    if len(passwords) < 64:
        return [_hash_initial(p) for p in passwords]
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = workers or max(1, os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_hash_initial, passwords, chunksize=256))


def _org_names(session, ids: Iterable[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for where in _matching(session, Organisation.id, sorted(set(ids))):
        names.update(session.execute(select(Organisation.id, Organisation.name).where(where)).all())
    return names


def import_users(session, data: bytes, *, actor: Actor, dry_run: bool = False, initial_passwords: bool = False,
                 source: str = "", progress: Callable[[int], None] | None = None, details: int = 0,
                 confirmed_renames: dict[str, list[str]] | None = None,
                 audit_detail: dict | None = None) -> ImportResult:
    """Import a CSV file's bytes. Commits (unless dry_run) and returns the result with per-line errors.

    `progress(n)` is called with the number of steps done since the previous call: one per line read, two per
    new user (prepared, then inserted) and one per changed user, so lines + 2 x created + updated in all.
    `details` > 0 lists up to that many new organisations, new users and changed users in the result.
    `confirmed_renames` ({code: [old name, new name]}) makes organisation renames need approval: a rename
    not in it (the database changed since the dry run, or nobody confirmed it) is not made and the lines of
    that organisation are refused. None (the CLI) applies renames and reports them in `org_renames`.
    """
    result = ImportResult(dry_run=dry_run)
    text, result.encoding = decode(data)
    _header, rows = read_rows(text)
    tick = progress or (lambda n: None)

    # 1. Validate every line (no database access).
    lines: list[Line] = []
    seen_email: dict[str, int] = {}
    org_facts: dict[str, Line] = {}
    pending = 0
    for line_no, row in rows:
        result.lines += 1
        pending += 1
        if pending >= 1000:
            tick(pending)
            pending = 0
        item, errors = validate_row(line_no, row)
        if item is not None:
            if item.email in seen_email:
                errors = [_l("同じメールアドレスが %(line)s 行目にもあります（1人1行にしてください）。",
                               line=seen_email[item.email])]
            else:
                first = org_facts.get(item.org_code)
                if first is not None and first.org_kind != item.org_kind:
                    errors = [_l("組織コード %(code)s の組織区分が %(line)s 行目（%(first)s）と異なります（%(kind)s）。",
                                 code=item.org_code, line=first.line, first=ROLE_LABELS[first.org_kind],
                                 kind=ROLE_LABELS[item.org_kind])]
        if errors:
            result.errors.extend((line_no, e) for e in errors)
            continue
        seen_email[item.email] = item.line
        org_facts.setdefault(item.org_code, item)
        lines.append(item)
    tick(pending)

    # 2. Organisations: check against the database, then upsert (municipalities first).
    existing_orgs = _existing_orgs(session, sorted(org_facts.keys() | {i.parent_code for i in lines if i.parent_code}))
    bad_lines: set[int] = set()

    def refuse(item: Line, message: str) -> None:
        result.errors.append((item.line, message))
        bad_lines.add(item.line)

    for item in lines:
        known = existing_orgs.get(item.org_code)
        if known is not None and known.kind != item.org_kind:
            refuse(item, _l("組織コード %(code)s は既に「%(known)s」として登録されています（この行は %(kind)s）。",
                            code=item.org_code, known=ROLE_LABELS.get(known.kind, known.kind),
                            kind=ROLE_LABELS[item.org_kind]))
        elif known is None and not item.org_name:
            refuse(item, _l("組織コード %(code)s は未登録のため、組織名（org_name）が必要です。", code=item.org_code))
        elif item.org_kind == "clinic":
            parent = existing_orgs.get(item.parent_code)
            in_file = org_facts.get(item.parent_code)
            if parent is not None and parent.kind != "municipality" or (
                    parent is None and (in_file is None or in_file.org_kind != "municipality"
                                        or in_file.line in bad_lines)):
                refuse(item, _l("医療機関の所属自治体（コード %(code)s）が登録されていません。"
                                "先に自治体を登録するか、同じファイルに自治体の行を入れてください。", code=item.parent_code))
    if bad_lines:
        lines = [i for i in lines if i.line not in bad_lines]
        # An organisation only named by refused lines is not created.
        org_facts = {}
        for item in lines:
            org_facts.setdefault(item.org_code, item)

    now = utcnow()
    org_ids = {code: row.id for code, row in existing_orgs.items()}
    renames: list[dict] = []
    blocked: dict[str, tuple[str, str]] = {}
    for kinds in (("municipality",), ("clinic", "wholesaler")):
        new_rows, changed = [], []
        for code, item in org_facts.items():
            if item.org_kind not in kinds:
                continue
            parent_id = org_ids.get(item.parent_code) if item.parent_code else None
            known = existing_orgs.get(code)
            if known is None:
                new_rows.append({"code": code, "name": item.org_name, "kind": item.org_kind,
                                 "name_kana": item.org_name_kana or kana.guess(item.org_name),
                                 "prefecture": item.prefecture, "parent_id": parent_id,
                                 "created_at": now, "updated_at": now})
                continue
            want = {"name": item.org_name or known.name, "prefecture": item.prefecture or known.prefecture,
                    "parent_id": parent_id if item.parent_code else known.parent_id}
            if want["name"] != known.name:
                if confirmed_renames is not None and list(confirmed_renames.get(code) or ()) != [known.name,
                                                                                                   want["name"]]:
                    blocked[code] = (known.name, want["name"])
                    continue
                renames.append({"code": code, "kind": known.kind, "old": known.name, "new": want["name"],
                                "id": known.id})
            want["name_kana"] = item.org_name_kana or (known.name_kana if want["name"] == known.name and known.name_kana
                                                       else kana.guess(want["name"]))
            if (want["name"], want["prefecture"], want["parent_id"], want["name_kana"]) != (
                    known.name, known.prefecture, known.parent_id, known.name_kana):
                changed.append({"id": known.id, **want, "updated_at": now})
        if not dry_run:
            bulk_insert(session, Organisation, new_rows, "code")
            for part in _chunks(changed):
                session.execute(update(Organisation), part)
            if new_rows:
                for code, row in _existing_orgs(session, [r["code"] for r in new_rows]).items():
                    org_ids[code] = row.id
        else:
            for r in new_rows:
                org_ids[r["code"]] = -1
        result.orgs_created += len(new_rows)
        result.orgs_updated += len(changed)
        if details:
            room = details - len(result.orgs_new)
            result.orgs_new.extend({"code": r["code"], "name": r["name"], "kind": r["kind"]} for r in new_rows[:room])
    if blocked:
        for item in lines:
            if item.org_code in blocked:
                old_name, new_name = blocked[item.org_code]
                refuse(item, _l("組織コード %(code)s の組織名の変更（%(old)s → %(new)s）が確認されていないため、"
                                "この行は取り込みませんでした。確認画面からやり直してください。",
                                code=item.org_code, old=old_name, new=new_name))
        lines = [i for i in lines if i.line not in bad_lines]
    if renames:
        members = dict(session.execute(select(User.organisation_id, func.count(User.id))
                                       .where(User.organisation_id.in_([r["id"] for r in renames]))
                                       .group_by(User.organisation_id)).all())
        result.org_renames = [{"code": r["code"], "kind": r["kind"], "old": r["old"], "new": r["new"],
                               "users": members.get(r.pop("id"), 0)} for r in renames]
    final_names = {code: (item.org_name or existing_orgs[code].name if code in existing_orgs else item.org_name)
                   for code, item in org_facts.items()}
    for code, (old_name, _new) in blocked.items():
        final_names[code] = old_name

    # 3. Users.
    existing_users = _existing_users(session, [i.email for i in lines])
    new_users, changed_users = [], []
    for item in lines:
        org_id = org_ids.get(item.org_code)
        known = existing_users.get(item.email)
        if known is None:
            new_users.append(item)
            continue
        reading = item.name_kana or (known.name_kana if known.name == item.name and known.name_kana
                                     else kana.guess(item.name))
        if (known.name, known.roles, known.organisation_id, known.name_kana) == (item.name, item.roles, org_id,
                                                                                  reading):
            result.unchanged += 1
        elif "admin" in known.roles.split():
            refuse(item, _l("%(email)s は管理者のアカウントのため、一括登録では変更できません（管理画面で変更してください）。",
                            email=item.email))
        else:
            changed_users.append({"id": known.id, "name": item.name, "roles": item.roles, "name_kana": reading,
                                  "organisation_id": org_id, "updated_at": now})
            if details and len(result.updated_users) < details:
                result.updated_users.append({
                    "line": item.line, "email": item.email, "old_name": known.name, "new_name": item.name,
                    "old_org": known.organisation_id, "new_org": final_names.get(item.org_code, item.org_name),
                    "old_roles": known.roles, "new_roles": item.roles,
                    "old_kana": known.name_kana or "", "new_kana": reading or ""})
    result.created, result.updated = len(new_users), len(changed_users)
    if result.updated_users:
        old_orgs = _org_names(session, [u["old_org"] for u in result.updated_users if u["old_org"]])
        for u in result.updated_users:
            u["old_org"] = old_orgs.get(u["old_org"], "") if u["old_org"] else ""
    if details:
        result.created_users = [{"line": u.line, "email": u.email, "name": u.name,
                                 "org": final_names.get(u.org_code, u.org_name), "roles": u.roles}
                                for u in new_users[:details]]

    hashes: list[str | None] = [None] * len(new_users)
    if initial_passwords and new_users:
        plain = [generate_initial_password() for _ in new_users]
        if not dry_run:
            hashes = hash_many(plain)
        result.passwords = [(u.email, u.name, u.org_code, p) for u, p in zip(new_users, plain)]
    if not dry_run:
        rows = []
        for u, h in zip(new_users, hashes):
            rows.append({"email": u.email, "name": u.name, "name_kana": u.name_kana or kana.guess(u.name),
                         "organisation_id": org_ids[u.org_code], "roles": u.roles,
                         "locale": "ja", "password_hash": h, "state": "invited", "must_change_password": True,
                         "failed_logins": 0, "session_version": 1, "needs_review": False,
                         "created_at": now, "updated_at": now})
            if len(rows) % 1000 == 0:
                tick(1000)  # readings are guessed here: a few seconds for 100k names
        tick(len(rows) % 1000)
        bulk_insert(session, User, rows, "email")
        tick(len(rows))
        for part in _chunks(changed_users):
            session.execute(update(User), part)
            tick(len(part))
        audit.record(session, actor, "users.imported", "import", None,
                     {**result.counts(), "source": source[:200],
                      "initial_passwords": bool(initial_passwords),
                      "organisation_renames": [[r["code"], r["old"], r["new"]] for r in result.org_renames[:200]],
                      **(audit_detail or {})},
                     summary=f"{source}: +{result.created} ~{result.updated} ={result.unchanged} x{result.failed}")
        session.commit()
    else:
        session.rollback()
    result.errors.sort()
    return result


def write_passwords(path: str, result: ImportResult) -> None:
    """Write the initial-password letters' data; readable by the owner only."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name", "org_code", "initial_password"])
        for email, name, org_code, password in result.passwords:
            writer.writerow([csv_safe(email), csv_safe(name), csv_safe(org_code), password])
