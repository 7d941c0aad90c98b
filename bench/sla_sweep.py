"""SLA sweep over a large ticket table on PostgreSQL (target: 1,000,000 tickets, 50,000 open, < 10 s).

    createdb -h 127.0.0.1 -U postgres --template template0 --locale C.UTF-8 hd_sla_bench
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_sla_bench \
        .venv/bin/python bench/sla_sweep.py --tickets 1000000 --open 50000
    (add --reuse to skip seeding when the table is already there)

Steps: seed (bulk COPY, not timed as the sweep), make exactly --open tickets open, start their SLA
clocks (`backfill_clocks`), clear their badges, then time two sweeps: the first marks at-risk and
breached tickets and queues the digest mails; the second must find nothing (idempotent).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

os.environ.setdefault("HELPDESK_CLI", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--open", dest="open_count", type=int, default=50_000)
    parser.add_argument("--reuse", action="store_true", help="keep the seeded tickets of an earlier run")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (see the docstring)")
    from sqlalchemy import delete, func, select, text

    from helpdesk import create_app
    from helpdesk.extensions import db
    from helpdesk.notify.models import Outbox
    from helpdesk.sla import service
    from helpdesk.sla.models import SlaClock
    from helpdesk.tickets.models import Ticket
    from helpdesk.tickets.seed import seed_tickets
    from helpdesk.tickets.service import ensure_categories

    app = create_app({"RQ_ASYNC": False, "REDIS_URL": None, "NOTIFY_ENABLED": False})
    with app.app_context():
        session = db.session
        have = 0
        if args.reuse:
            db.create_all()
            have = session.scalar(select(func.count()).select_from(Ticket))
        if not args.reuse or have < args.tickets:
            db.drop_all()
            db.create_all()
            ensure_categories(session)
            session.commit()
            from helpdesk.demo import load_demo

            load_demo(session)  # staff (assignees, a supervisor) for the notices
            started = time.perf_counter()
            seed_tickets(session, args.tickets - session.scalar(select(func.count()).select_from(Ticket)),
                         rng=random.Random(1), progress=lambda m: None)
            print(f"seeded {args.tickets:,} tickets in {time.perf_counter() - started:.1f} s")
        total = session.scalar(select(func.count()).select_from(Ticket))

        # Exactly --open open tickets: close the surplus, or reopen closed ones.
        open_sql = "status IN ('new', 'open', 'pending', 'escalated')"
        n_open = session.scalar(text(f"SELECT count(*) FROM tickets WHERE {open_sql}"))
        if n_open > args.open_count:
            session.execute(text(
                f"UPDATE tickets SET status = 'closed', resolved_at = coalesce(resolved_at, created_at), "
                f"closed_at = coalesce(closed_at, created_at) WHERE id IN (SELECT id FROM tickets WHERE {open_sql} "
                f"ORDER BY id LIMIT :n)"), {"n": n_open - args.open_count})
        elif n_open < args.open_count:
            session.execute(text(
                "UPDATE tickets SET status = 'open', resolved_at = NULL, closed_at = NULL WHERE id IN "
                "(SELECT id FROM tickets WHERE status = 'closed' ORDER BY id DESC LIMIT :n)"),
                {"n": args.open_count - n_open})
        session.execute(text(f"UPDATE tickets SET sla_state = NULL WHERE {open_sql}"))
        if not args.reuse:
            session.execute(delete(SlaClock))
        session.execute(delete(Outbox))
        session.commit()
        n_open = session.scalar(text(f"SELECT count(*) FROM tickets WHERE {open_sql}"))
        started = time.perf_counter()
        clocks = service.backfill_clocks(session)
        print(f"tickets: {total:,}, open: {n_open:,}; SLA clocks started for {clocks:,} in "
              f"{time.perf_counter() - started:.1f} s (one-off backfill)")
        session.execute(text(f"UPDATE tickets SET sla_state = NULL WHERE {open_sql}"))
        session.commit()
        session.execute(text("ANALYZE tickets"))
        session.execute(text("ANALYZE sla_clocks"))
        session.commit()

        for label in ("first sweep (marks + notices)", "second sweep (idempotent)"):
            started = time.perf_counter()
            result = service.sweep(session)
            elapsed = time.perf_counter() - started
            print(f"{label}: {elapsed:.2f} s — at_risk {len(result.at_risk):,}, breached {len(result.breached):,}, "
                  f"escalated {len(result.escalated):,}, mails queued {result.mails:,}")
        print(f"outbox rows: {session.scalar(select(func.count()).select_from(Outbox)):,}")


if __name__ == "__main__":
    main()
