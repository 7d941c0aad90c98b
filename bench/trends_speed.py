"""Trend queries over 1,000,000 tickets on PostgreSQL: rollup refresh time and query p50/p95.

    createdb -h 127.0.0.1 -U postgres --template template0 --locale C.UTF-8 hd_insights_bench
    .venv/bin/python bench/trends_speed.py [--db URL] [--tickets 1000000] [--runs 30]

Seeds the database with `helpdesk seed`'s generator when it holds fewer tickets than asked, then
times: the rollup rebuild (the job), every query the /insights page and `helpdesk insights trends`
make (read from the rollup), and for comparison one GROUP BY straight over the tickets table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HELPDESK_CLI", "1")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/hd_insights_bench")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rebuild-table", action="store_true", help="drop and recreate trend_rollups first")
    args = parser.parse_args()

    from sqlalchemy import func, select, text

    from helpdesk import create_app
    from helpdesk.extensions import db
    from helpdesk.insights import trends
    from helpdesk.tickets.models import Ticket

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": args.db, "REDIS_URL": None})
    with app.app_context():
        db.create_all()
        have = db.session.scalar(select(func.count(Ticket.id)))
        if have < args.tickets:
            from helpdesk._optional import import_optional

            accounts_seed = import_optional("helpdesk.accounts.seed")
            from helpdesk.tickets.seed import seed_tickets

            rng = random.Random(7)
            started = time.perf_counter()
            if accounts_seed is not None:
                accounts_seed.seed_accounts(db.session, orgs=3000, users=6000, rng=rng, progress=lambda m: None)
            seed_tickets(db.session, args.tickets - have, rng=rng, progress=lambda m: print("  seed:", m))
            print(f"seeded {args.tickets - have} tickets in {time.perf_counter() - started:.0f} s")
        total = db.session.scalar(select(func.count(Ticket.id)))
        print(f"tickets in the database: {total}")
        if args.rebuild_table:
            db.session.execute(text("DROP TABLE IF EXISTS trend_rollups"))
            db.session.commit()
            db.create_all()
        db.session.execute(text("ANALYZE"))
        db.session.commit()

        started = time.perf_counter()
        result = trends.refresh_rollups(db.session)
        print(f"rollup rebuild (job): {time.perf_counter() - started:.1f} s, {result['rows']} rollup rows")

        today = dt.date.today()
        queries = {
            "cli trends --by category --period week": lambda: trends.trend_rows(db.session, "category", "week"),
            "cli trends --by org --period week": lambda: trends.trend_rows(db.session, "org", "week"),
            "cli trends --by role --period day (365 d)":
                lambda: trends.trend_rows(db.session, "role", "day", today - dt.timedelta(days=365), today),
            "page: volume x5 dims + backlog + FCR + spikes": lambda: (
                [trends.volume(db.session, d, "week", limit=10) for d in trends.DIMENSIONS],
                trends.backlog(db.session, "week"), trends.first_contact_resolution(db.session),
                trends.spike_report(db.session, "week")),
            "staleness check (ensure_rollups, no change)": lambda: trends.ensure_rollups(db.session),
        }
        print(f"{'query':<48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  ({args.runs} runs)")
        for name, fn in queries.items():
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                fn()
                db.session.rollback()
                times.append((time.perf_counter() - t0) * 1000)
            print(f"{name:<48} {statistics.median(times):8.1f} {pct(times, 95):8.1f} {max(times):8.1f}")

        t0 = time.perf_counter()
        db.session.execute(text(
            "SELECT date(timezone('Asia/Tokyo', created_at)), category_id, count(*) FROM tickets "
            "WHERE created_at >= now() - interval '84 days' GROUP BY 1, 2")).all()
        print(f"for comparison, one GROUP BY over the tickets table (12 weeks by category): "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
