"""What automation rules cost: ticket creation / update with 0 vs 10 active rules, and the time-based pass.

    createdb -h 127.0.0.1 -U postgres --template template0 --locale C.UTF-8 hd_auto_bench
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_auto_bench \
        .venv/bin/python bench/automation_speed.py --tickets 300 --stale 20000
    (without DATABASE_URL: a SQLite file in a temporary folder)

Prints figures, asserts nothing. Creation/update: mean milliseconds per committed operation through
`tickets.service` (NOTIFY_ENABLED off, so only the engine's own work differs), with no rule, with ten
rules none of which match, and with ten rules of which three match and act (priority, tag, note).
Time-based pass: --stale seeded tickets (bulk), a rule 'status new and 1 hour since update → tag';
the first pass applies it to every matching ticket, the second must apply nothing.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("HELPDESK_CLI", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--stale", type=int, default=20_000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/auto.db"
    from sqlalchemy import delete, func, select, update

    from helpdesk import create_app
    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor
    from helpdesk.automation import jobs, service
    from helpdesk.automation.models import AutomationRule, AutomationRun
    from helpdesk.extensions import db
    from helpdesk.tickets import service as tickets
    from helpdesk.tickets.models import Ticket
    from helpdesk.tickets.seed import seed_tickets
    from helpdesk.tickets.service import ensure_categories

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RQ_ASYNC": False, "REDIS_URL": None,
                      "NOTIFY_ENABLED": False})
    with app.app_context():
        session = db.session
        db.drop_all()
        db.create_all()
        ensure_categories(session)
        session.commit()
        from helpdesk.demo import load_demo

        load_demo(session)
        boss = session.scalar(select(User).where(User.email == "supervisor@helpdesk.example.jp"))
        agent = session.scalar(select(User).where(User.email == "agent1@helpdesk.example.jp"))
        requester = session.scalar(select(User).where(User.email == "clinic@chiyoda-naika.example.jp"))
        actor, staff = Actor(boss.id, boss.email), Actor(agent.id, agent.email)
        print(f"database: {db.engine.dialect.name}, {args.tickets} operations per case")

        def rules(trigger: str, matching: int) -> None:
            session.execute(delete(AutomationRule))
            session.commit()
            for i in range(10):
                word = "印刷" if i < matching else f"該当なし{i}"
                acts = [[{"kind": "set_priority", "value": "P2"}], [{"kind": "add_tag", "value": f"t{i}"}],
                        [{"kind": "add_note", "text": "自動メモ {ref}"}]][i % 3]
                service.save_rule(session, actor, name=f"r{i}", trigger=trigger, interval_minutes=None,
                                  conditions=[{"field": "text", "op": "contains", "value": word},
                                              {"field": "channel", "op": "is", "value": "web"}], actions=acts)

        def create_case(label: str) -> list[int]:
            ids, started = [], time.perf_counter()
            for n in range(args.tickets):
                t = tickets.create_ticket(session, actor=Actor(requester.id, requester.email),
                                          subject=f"帳票の印刷ができない {n}", body="月次帳票の印刷でエラー",
                                          requester_id=requester.id)
                ids.append(t.id)
            ms = (time.perf_counter() - started) * 1000 / args.tickets
            print(f"  create, {label:<28} {ms:7.2f} ms/ticket")
            return ids

        print("ticket creation ('created' rules):")
        rules("created", 0)
        session.execute(delete(AutomationRule))
        session.commit()
        create_case("no rule")
        rules("created", 0)
        create_case("10 rules, none matching")
        rules("created", 3)
        create_case("10 rules, 3 matching")

        print("ticket update, priority change ('updated' rules):")
        session.execute(delete(AutomationRule))
        session.commit()
        ids = create_case("(setup)")
        for label, matching in (("no rule", None), ("10 rules, none matching", 0), ("10 rules, 3 matching", 3)):
            if matching is None:
                session.execute(delete(AutomationRule))
                session.commit()
            else:
                rules("updated", matching)
            started = time.perf_counter()
            for ticket_id in ids:
                current = session.get(Ticket, ticket_id).priority
                tickets.update_fields(session, ticket_id, staff, priority="P4" if current != "P4" else "P3")
            ms = (time.perf_counter() - started) * 1000 / len(ids)
            print(f"  update, {label:<28} {ms:7.2f} ms/update")

        print(f"time-based pass over {args.stale} seeded tickets:")
        session.execute(delete(AutomationRule))
        session.commit()
        seed_tickets(session, args.stale, rng=random.Random(1), progress=lambda m: None)
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
        session.execute(update(Ticket).values(updated_at=old))
        session.commit()
        rule = service.save_rule(session, actor, name="stale", trigger="timed", interval_minutes=60,
                                 conditions=[{"field": "status", "op": "is", "value": "new"},
                                             {"field": "hours_since_update", "op": "gte", "value": "1"}],
                                 actions=[{"kind": "add_tag", "value": "stale"}])
        candidates = session.scalar(select(func.count()).select_from(Ticket).where(Ticket.status == "new"))
        for n in (1, 2):
            started = time.perf_counter()
            result = jobs.run_timed(session, force=True)
            seconds = time.perf_counter() - started
            per = f", {seconds * 1000 / result['applied']:.2f} ms per applied ticket" if result["applied"] else ""
            print(f"  pass {n}: applied {result['applied']} of {candidates} new tickets, errors {result['errors']}, "
                  f"{seconds:.2f} s{per}")
        runs = session.scalar(select(func.count()).select_from(AutomationRun).where(AutomationRun.rule_id == rule.id))
        print(f"  automation_runs rows for the rule: {runs}")
        db.session.remove()
        db.drop_all()


if __name__ == "__main__":
    main()
