"""Prepare a benchmark database: schema (create_all + search DDL) and `--tickets N` seeded tickets.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_tickets \
        .venv/bin/python bench/tickets_setup.py --tickets 1000000

Prints the time the seed took. The database should be created from template0 with the
C.UTF-8 locale so pg_trgm indexes Japanese text.
"""
from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("HELPDESK_CLI", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from helpdesk import create_app
    from helpdesk.db_setup import install_extras
    from helpdesk.demo import load_demo
    from helpdesk.extensions import db
    from helpdesk.tickets.seed import seed_tickets
    from helpdesk.tickets.service import ensure_categories

    app = create_app()
    with app.app_context():
        db.create_all()
        install_extras(db.engine)
        ensure_categories(db.session)
        db.session.commit()
        load_demo(db.session)  # demo logins (agent1@… etc.) for the HTTP benchmark
        started = time.perf_counter()
        made = seed_tickets(db.session, args.tickets, rng=random.Random(args.seed), progress=print)
        elapsed = time.perf_counter() - started
        print(f"seeded {made:,} tickets in {elapsed:.1f} s ({made / elapsed:,.0f} tickets/s)")


if __name__ == "__main__":
    main()
