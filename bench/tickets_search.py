"""Measure the ticket search strategies on a seeded database (prints figures; see README "Search").

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_tickets .venv/bin/python bench/tickets_search.py
    DATABASE_URL=sqlite:////tmp/hd_tickets_100k.db .venv/bin/python bench/tickets_search.py

Compares, per query: the shipped search (`queue.query_tickets` with `q`, ranked), a plain phrase
LIKE (what a naive search does), and on PostgreSQL pg_trgm's `word_similarity` ranking (`<%`), or
on SQLite the same search with the FTS5 table ignored (LIKE scans only). "recall" is whether the
top 50 contain a ticket with the inflected form 「ログインができません」 for the query 「ログインできない」.
"""
from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("HELPDESK_CLI", "1")

QUERIES = ["ログインできない", "納品予定日", "印刷", "接種記録 修正", "パスワード再設定メール", "証明書エラー",
           "配送先住所", "廃棄", "Edge", "e1023"]


def timed(fn, repeat: int = 5) -> tuple[float, float, object]:
    fn()
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), result


def main() -> None:
    from sqlalchemy import func, select, text

    from helpdesk import create_app
    from helpdesk.accounts.models import User
    from helpdesk.extensions import db
    from helpdesk.text import normalize
    from helpdesk.tickets import queue, search
    from helpdesk.tickets.models import Ticket

    app = create_app({"REDIS_URL": None})
    with app.app_context():
        session = db.session
        dialect = session.get_bind().dialect.name
        agent = session.scalar(select(User).where(User.email == "agent1@helpdesk.example.jp"))
        total = session.scalar(select(func.count(Ticket.id)))
        print(f"{dialect}: {total:,} tickets")
        rows = []
        for q in QUERIES:
            filters = queue.parse_filters({"q": q})
            ours = timed(lambda: queue.query_tickets(session, agent, filters, limit=50))
            phrase = normalize(q)
            naive = timed(lambda: session.scalars(
                select(Ticket.id).where(Ticket.search_text.like(f"%{phrase}%"))
                .order_by(Ticket.created_at.desc()).limit(50)).all())
            if dialect == "postgresql":
                def trgm():
                    session.execute(text("SET LOCAL statement_timeout = '20s'"))
                    return session.execute(text(
                        "SELECT id FROM tickets WHERE :q <% search_text "
                        "ORDER BY word_similarity(:q, search_text) DESC LIMIT 50"), {"q": phrase}).scalars().all()
                try:
                    other = timed(trgm, repeat=2)
                except Exception as exc:  # timeout
                    session.rollback()
                    other = (float("nan"), float("nan"), str(exc)[:40])
                other_label = "pg_trgm <%"
            else:
                original = search._has_fts
                search._has_fts = lambda _session: False
                try:
                    other = timed(lambda: queue.query_tickets(session, agent, filters, limit=50), repeat=2)
                finally:
                    search._has_fts = original
                other_label = "LIKE only"
            rows.append((q, ours, naive, other))
            print(f"{q:<16} shipped {ours[0]:7.1f} ms (max {ours[1]:7.1f})  phrase LIKE {naive[0]:7.1f} ms  "
                  f"{other_label} {other[0]:7.1f} ms", flush=True)
        # Recall on the inflection example.
        page = queue.query_tickets(session, agent, queue.parse_filters({"q": "ログインできない"}), limit=50)
        hit = session.scalar(select(func.count(Ticket.id)).where(
            Ticket.id.in_([t.id for t in page.items]), Ticket.search_text.like("%ログインができません%")))
        print(f"recall: shipped top 50 for 「ログインできない」 hold {hit} tickets saying 「ログインができません」 "
              f"(a phrase LIKE can hold none)")
        p = sorted(r[1][0] for r in rows)
        print(f"shipped search median over queries: {statistics.median(p):.1f} ms, worst: {p[-1]:.1f} ms")


if __name__ == "__main__":
    main()
