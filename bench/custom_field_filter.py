"""Queue filter on custom fields (cf_<key>=value, issue 17.2): latency at scale, and the CSV export.

    # once: a database from template0 (C.UTF-8), N seeded tickets, three fields with a value on every ticket
    createdb -h 127.0.0.1 -U postgres --template template0 --locale C.UTF-8 hd_cf_bench
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_cf_bench \
        .venv/bin/python bench/custom_field_filter.py setup --tickets 200000
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_cf_bench .venv/bin/python bench/custom_field_filter.py run

Values: lot_number = 'L' || (id % 5000) (≈ N/5000 tickets each: a selective filter), doses = id % 10
(10 % of the tickets: a broad one), urgent checked on every 50th ticket. Prints p50/p95 of the first
queue page (50 rows, newest first, as an agent), the capped count, and the time of a CSV export.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("HELPDESK_CLI", "1")


def setup(tickets: int) -> None:
    from sqlalchemy import text

    from helpdesk import create_app
    from helpdesk.audit import Actor
    from helpdesk.db_setup import install_extras
    from helpdesk.demo import load_demo
    from helpdesk.extensions import db
    from helpdesk.tickets import custom_fields as cf
    from helpdesk.tickets.seed import seed_tickets
    from helpdesk.tickets.service import ensure_categories

    app = create_app()
    with app.app_context():
        db.create_all()
        install_extras(db.engine)
        ensure_categories(db.session)
        db.session.commit()
        load_demo(db.session)
        started = time.perf_counter()
        seed_tickets(db.session, tickets, rng=random.Random(1), progress=print)
        print(f"seeded {tickets:,} tickets in {time.perf_counter() - started:.1f} s")
        actor = Actor.system("bench")
        ids = {}
        for key, type_ in (("lot_number", "text"), ("doses", "number"), ("urgent", "checkbox")):
            ids[key] = cf.create_field(db.session, actor, key=key, label_ja=key, type=type_).id
        started = time.perf_counter()
        db.session.execute(text(
            "INSERT INTO custom_field_values (ticket_id, field_id, value_text, updated_at) "
            "SELECT id, :f, 'L' || (id % 5000), created_at FROM tickets"), {"f": ids["lot_number"]})
        db.session.execute(text(
            "INSERT INTO custom_field_values (ticket_id, field_id, value_number, updated_at) "
            "SELECT id, :f, id % 10, created_at FROM tickets"), {"f": ids["doses"]})
        db.session.execute(text(
            "INSERT INTO custom_field_values (ticket_id, field_id, value_bool, updated_at) "
            "SELECT id, :f, true, created_at FROM tickets WHERE id % 50 = 0"), {"f": ids["urgent"]})
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE custom_field_values"))
            db.session.commit()
        print(f"custom field values written in {time.perf_counter() - started:.1f} s")


def _time(fn, runs: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def run(runs: int) -> None:
    from sqlalchemy import func, select
    from werkzeug.datastructures import MultiDict

    from helpdesk import create_app
    from helpdesk.accounts.models import User
    from helpdesk.extensions import db
    from helpdesk.tickets import queue
    from helpdesk.tickets.models import Ticket

    # The CSV export goes through the real route (test client on "localhost"): that host must be the public one.
    app = create_app({"BASE_URL": "http://localhost", "WTF_CSRF_ENABLED": False, "SESSION_COOKIE_SECURE": False})
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(Ticket))
        agent = db.session.scalar(select(User).where(User.email == "agent1@helpdesk.example.jp"))
        print(f"{db.engine.dialect.name}, {total:,} tickets, {runs} runs each")
        cases = [("no custom filter (active)", {"status": "active"}),
                 ("cf_lot_number=L1234 (selective)", {"cf_lot_number": "L1234"}),
                 ("cf_lot_number=L1234 + active", {"cf_lot_number": "L1234", "status": "active"}),
                 ("cf_doses=3 (10 %)", {"cf_doses": "3"}),
                 ("cf_urgent=1 + active", {"cf_urgent": "1", "status": "active"}),
                 ("cf_urgent=0 + P1 (NOT EXISTS)", {"cf_urgent": "0", "priority": "P1"}),
                 ("cf_doses=3 + cf_urgent=1 + q=ログイン", {"cf_doses": "3", "cf_urgent": "1", "q": "ログイン"})]
        for label, args in cases:
            filters = queue.parse_filters(MultiDict(args))

            def page():
                db.session.rollback()
                return queue.query_tickets(db.session, agent, filters, limit=50)

            def count():
                db.session.rollback()
                return queue.count_tickets(db.session, agent, filters)

            p50, p95 = _time(page, runs)
            c50, _c95 = _time(count, max(3, runs // 4))
            print(f"  {label:42s} page p50 {p50:7.1f} ms  p95 {p95:7.1f} ms   count ({count().value:,}"
                  f"{'+' if count().capped else ''}) p50 {c50:7.1f} ms")
        client = app.test_client()
        from helpdesk.demo import DEMO_PASSWORD

        login = client.post("/login", data={"email": agent.email, "password": DEMO_PASSWORD})
        assert login.status_code == 302, login.status_code
        started = time.perf_counter()
        response = client.get("/agent/queue/export.csv?cf_lot_number=L1234")
        rows = response.get_data(as_text=True).count("\n") - 1
        print(f"  CSV export cf_lot_number=L1234: {rows:,} rows in {(time.perf_counter() - started) * 1000:.0f} ms "
              f"(HTTP {response.status_code})")
        started = time.perf_counter()
        response = client.get("/agent/queue/export.csv?cf_urgent=1&status=active")
        rows = response.get_data(as_text=True).count("\n") - 1
        print(f"  CSV export cf_urgent=1 + active: {rows:,} rows in {(time.perf_counter() - started) * 1000:.0f} ms "
              f"(HTTP {response.status_code})")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--tickets", type=int, default=200_000)
    r = sub.add_parser("run")
    r.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if args.cmd == "setup":
        setup(args.tickets)
    else:
        run(args.runs)


if __name__ == "__main__":
    main()
