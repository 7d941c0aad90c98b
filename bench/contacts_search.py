"""Caller type-ahead speed: `search_contacts` over N users, with and without the trigram indexes.

    createdb -h 127.0.0.1 -U postgres --template template0 --locale C.UTF-8 hd_portal_bench
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_portal_bench \
        .venv/bin/python bench/contacts_search.py --users 100000

Seeds synthetic organisations and users (helpdesk.accounts.seed) up to --users, then times the
queries an agent types (partial kanji name, name without the space, e-mail prefix, phone digits,
organisation code, part of an organisation name) and prints p50 / p95 per kind, first without and
then with `contacts.POSTGRES_DDL`. Also times the JSON endpoint through the test client.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time

os.environ.setdefault("HELPDESK_CLI", "1")

INDEXES = ("ix_users_name_trgm", "ix_users_email_trgm", "ix_users_phone_trgm", "ix_organisations_name_trgm",
           "ix_organisations_code_trgm")


def _queries(session, rng: random.Random, n: int) -> dict[str, list[str]]:
    from sqlalchemy import select

    from helpdesk.accounts.models import Organisation, User

    rows = session.execute(select(User.name, User.email, User.phone, Organisation.code, Organisation.name)
                           .join(Organisation, Organisation.id == User.organisation_id)
                           .where(User.phone.is_not(None)).order_by(User.id).limit(5000)).all()
    sample = rng.sample(rows, min(n, len(rows)))
    return {
        "kanji family name (2 chars)": [r[0].split()[0][:2] for r in sample],
        "full name, no space": [r[0].replace(" ", "").replace("\u3000", "") for r in sample],
        "e-mail prefix (6 chars)": [r[1][:6] for r in sample],
        "phone digits (last 8)": [re.sub(r"\D", "", r[2])[-8:] for r in sample],
        "organisation code": [r[3] for r in sample],
        "organisation name (3 chars)": [r[4][2:5] for r in sample],
        "two words: org + family name": [f"{r[4][2:5]} {r[0].split()[0]}" for r in sample],
    }


def _time(fn, queries: list[str]) -> tuple[float, float]:
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    from sqlalchemy import func, select, text

    from helpdesk import create_app
    from helpdesk.accounts.models import User
    from helpdesk.accounts.seed import seed_accounts
    from helpdesk.extensions import db
    from helpdesk.tickets import contacts

    app = create_app({"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            sys.exit("set DATABASE_URL to a PostgreSQL database (created with --locale C.UTF-8)")
        db.create_all()
        have = db.session.scalar(select(func.count(User.id)))
        if have < args.users:
            started = time.perf_counter()
            seed_accounts(db.session, orgs=max(10, (args.users - have) // 20), users=args.users - have,
                          rng=random.Random(7), progress=print)
            db.session.commit()
            print(f"seeded {args.users - have:,} users in {time.perf_counter() - started:.1f} s")
        total = db.session.scalar(select(func.count(User.id)))
        queries = _queries(db.session, random.Random(3), args.queries)
        db.session.rollback()  # release the read lock before DROP / CREATE INDEX below
        print(f"users: {total:,}; {args.queries} queries per kind; times in ms (p50 / p95)")
        for label, create in (("without trigram indexes", False), ("with contacts.POSTGRES_DDL", True)):
            with db.engine.begin() as conn:
                for name in INDEXES:
                    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
                if create:
                    for statement in contacts.POSTGRES_DDL:
                        conn.exec_driver_sql(statement)
                conn.exec_driver_sql("ANALYZE users")
                conn.exec_driver_sql("ANALYZE organisations")
            print(f"\n{label}")
            for kind, qs in queries.items():
                hits = sum(1 for q in qs if contacts.search_contacts(db.session, q))
                p50, p95 = _time(lambda q: contacts.search_contacts(db.session, q), qs)
                print(f"  {kind:32s} {p50:7.1f} / {p95:7.1f}   (found something for {hits}/{len(qs)})")
            db.session.rollback()
        # Through HTTP (test client, one worker): what the browser's debounced fetch waits for.
        from helpdesk.demo import DEMO_PASSWORD

        agent = db.session.scalar(select(User).where(User.roles.like("%agent%"), User.state != "disabled",
                                                     User.locked_at.is_(None)).limit(1))
        client = app.test_client()
        login = client.post("/login", data={"email": agent.email, "password": DEMO_PASSWORD})
        assert login.status_code == 302, login.status_code
        assert client.get("/agent/contacts", query_string={"q": "東京"}).status_code == 200
        flat = [q for qs in queries.values() for q in qs]
        p50, p95 = _time(lambda q: client.get("/agent/contacts", query_string={"q": q}), flat)
        print(f"\nGET /agent/contacts (test client, {len(flat)} requests): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        db.session.execute(text("SELECT 1"))


if __name__ == "__main__":
    main()
