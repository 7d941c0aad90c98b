"""Benchmark: activation dashboard, outreach list, CSV export and user search at 100k users on PostgreSQL.

    .venv/bin/python bench/import_users_dashboard.py [--db hd_accounts_bench] [--repeat 5]

Run bench/import_users.py first (it leaves 100k imported users in the database); this script then
marks ~60% of them as having logged in (so the outreach list is realistic), and times each query
through the real HTTP views with a signed-in supervisor (median of --repeat runs).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="hd_accounts_bench")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{args.db}"
    os.environ.pop("REDIS_URL", None)

    from sqlalchemy import func, select, text

    from helpdesk import create_app
    from helpdesk.accounts.models import User
    from helpdesk.accounts.passwords import hash_password
    from helpdesk.extensions import db

    app = create_app({"TESTING": True, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
                      "SESSION_COOKIE_SECURE": False, "REDIS_URL": None})
    with app.app_context():
        users = db.session.scalar(select(func.count(User.id)))
        if users < 50_000:
            raise SystemExit(f"only {users} users: run bench/import_users.py first")
        # The migration may predate the accounts indexes: make sure the model's and the raw-DDL ones exist.
        from helpdesk.db_setup import install_postgres_extras

        for index in User.__table__.indexes:
            index.create(db.engine, checkfirst=True)
        install_postgres_extras(db.engine)
        # ~60% activated (every org whose id is not divisible by 5 has a logged-in user), some locked.
        db.session.execute(text("UPDATE users SET state='activated', last_login_at=now() - interval '1 day', "
                                "activated_at=now() - interval '2 days' WHERE id % 5 < 3 AND organisation_id % 5 <> 0 "
                                "AND state <> 'disabled'"))
        db.session.execute(text("UPDATE users SET locked_at=now(), locked_until=now() + interval '30 minutes', "
                                "failed_logins=5 WHERE id % 97 = 0"))
        sup = db.session.scalar(select(User).where(User.email == "bench-supervisor@helpdesk.example.jp"))
        if sup is None:
            sup = User(email="bench-supervisor@helpdesk.example.jp", name="ベンチ 監督", roles="supervisor agent",
                       password_hash=hash_password("Bench-Passw0rd!"), must_change_password=False)
            db.session.add(sup)
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        users = db.session.scalar(select(func.count(User.id)))

    client = app.test_client()
    assert client.post("/login", data={"email": "bench-supervisor@helpdesk.example.jp",
                                       "password": "Bench-Passw0rd!"}).status_code == 302
    cases = [
        ("GET", "/accounts/activation", None),
        ("GET", "/accounts/activation?kind=clinic&prefecture=%E5%A4%A7%E9%98%AA%E5%BA%9C", None),
        ("GET", "/accounts/activation?q=%E9%9D%92%E8%91%89", None),
        ("GET", "/accounts/activation?page=20", None),
        ("POST", "/accounts/activation/export", {}),
        ("GET", "/accounts/users?q=%E4%BD%90%E8%97%A4%E7%BF%94%E5%A4%AA", None),
        ("GET", "/accounts/users?q=011002", None),
        ("GET", "/accounts/users?q=sato.000123", None),
        ("GET", "/accounts/users?state=locked", None),
    ]
    print(f"users in database: {users:,}")
    for method, url, data in cases:
        times, size = [], 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = client.open(url, method=method, data=data)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            size = len(response.data)
        print(f"{method:4} {url[:70]:70} median {statistics.median(times):7.1f} ms  max {max(times):7.1f} ms "
              f"({size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
