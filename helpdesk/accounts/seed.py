"""Synthetic organisations and users for demos and benchmarks (bulk inserts, one shared password hash)."""
from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from sqlalchemy import func, select

from helpdesk import audit
from helpdesk.accounts.importer import bulk_insert
from helpdesk.accounts.models import Organisation, User
from helpdesk.accounts.synthetic import email_for, make_orgs, person_name, staff_roles
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.accounts.passwords import hash_password
from helpdesk.accounts.synthetic import Org
from helpdesk.demo import DEMO_PASSWORD

CHUNK = 5000


def _org_ids(session, codes: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(codes), CHUNK):
        ids.update(session.execute(select(Organisation.code, Organisation.id)
                                   .where(Organisation.code.in_(codes[start:start + CHUNK]))).all())
    return ids


def seed_accounts(session, orgs: int = 0, users: int = 0, rng: random.Random | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Insert `orgs` organisations and `users` users; returns {"orgs": created, "users": created}.

    About 60% of the users have logged in (activated), a few are locked, the rest are still invited,
    so the activation dashboard has something to show. Everyone shares one password hash (the demo
    password), computed once.
    """
    rng = rng or random.Random(1)
    say = progress or (lambda message: None)
    now = utcnow()
    made = {"orgs": 0, "users": 0}
    if users and not orgs and not session.scalar(select(func.count(Organisation.id))):
        orgs = max(10, users // 10)

    if orgs:
        synthetic = make_orgs(orgs, rng)
        municipalities = [o for o in synthetic if o.kind == "municipality"]
        others = [o for o in synthetic if o.kind != "municipality"]
        before = session.scalar(select(func.count(Organisation.id)))
        for start in range(0, len(municipalities), CHUNK):
            rows = [{"code": o.code, "name": o.name, "kind": o.kind, "prefecture": o.prefecture, "parent_id": None,
                     "created_at": now, "updated_at": now} for o in municipalities[start:start + CHUNK]]
            bulk_insert(session, Organisation, rows, "code")
        parents = _org_ids(session, [o.code for o in municipalities])
        for start in range(0, len(others), CHUNK):
            rows = [{"code": o.code, "name": o.name, "kind": o.kind, "prefecture": o.prefecture,
                     "parent_id": parents.get(o.parent_code) if o.parent_code else None,
                     "created_at": now, "updated_at": now} for o in others[start:start + CHUNK]]
            bulk_insert(session, Organisation, rows, "code")
            say(f"organisations: {min(start + CHUNK, len(others)) + len(municipalities)}/{len(synthetic)}")
        made["orgs"] = session.scalar(select(func.count(Organisation.id))) - before
        session.commit()

    if users:
        pool = session.execute(select(Organisation.id, Organisation.code, Organisation.kind,
                                      Organisation.prefecture, Organisation.name)).all()
        pool = [(row.id, Org(row.code, row.name, row.kind, row.prefecture or "")) for row in pool]
        password_hash = hash_password(DEMO_PASSWORD)
        offset = session.scalar(select(func.coalesce(func.max(User.id), 0))) or 0
        n_staff = users // 200
        before = session.scalar(select(func.count(User.id)))
        rows = []
        for k in range(users):
            i = offset + k + 1
            roll = rng.random()
            last_login = now - dt.timedelta(days=rng.random() * 60) if roll < 0.6 else None
            locked = 0.6 <= roll < 0.605
            row = {"name": person_name(rng), "locale": "ja", "password_hash": password_hash,
                   "state": "activated" if last_login else "invited", "must_change_password": last_login is None,
                   "failed_logins": 5 if locked else 0, "locked_at": now if locked else None,
                   "locked_until": now + dt.timedelta(minutes=30) if locked else None,
                   "last_login_at": last_login, "activated_at": last_login, "session_version": 1,
                   "needs_review": False, "created_at": now - dt.timedelta(days=90), "updated_at": now}
            if k < n_staff:
                row.update(email=f"seed-staff{i:06d}@helpdesk.example.jp", organisation_id=None,
                           roles=staff_roles(k), phone=None)
            else:
                org_id, org = pool[rng.randrange(len(pool))]
                row.update(email=email_for(i, org, rng), organisation_id=org_id, roles="requester",
                           phone=f"0{rng.randint(3, 99)}-{rng.randint(100, 9999)}-{rng.randint(1000, 9999)}")
            rows.append(row)
            if len(rows) == CHUNK:
                bulk_insert(session, User, rows, "email")
                rows = []
                say(f"users: {k + 1}/{users}")
        if rows:
            bulk_insert(session, User, rows, "email")
        made["users"] = session.scalar(select(func.count(User.id))) - before
    audit.record(session, Actor.system("seed"), "accounts.seeded", "database", None, dict(made))
    session.commit()
    return made
