"""Outbox delivery speed: N queued mails, 2 RQ workers, a local aiosmtpd sink (target ≥ 100 mails/s).

    createdb -h 127.0.0.1 -U postgres --template template0 --locale C.UTF-8 hd_sla_outbox
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_sla_outbox REDIS_URL=redis://127.0.0.1:6379/4 \
        .venv/bin/python bench/outbox_speed.py --mails 2000 --workers 2 [--worker-class fork|simple]

The mails are queued the way the app queues them (rows, then after each commit their ids handed to the
workers in coalesced batches over 4 lanes, one drain job per lane and burst — helpdesk/jobs.py); the
workers are separate processes running `deliver(outbox_id)` inside the app context: `fork` is
`helpdesk worker` (RQ's forking Worker: one work horse per job), `simple` runs the jobs in the
worker process itself (RQ SimpleWorker). The figure is sent rows per second, from the workers'
start until the last row is recorded as sent.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HELPDESK_CLI", "1")

SIMPLE_WORKER = """
import os
os.environ.setdefault("HELPDESK_CLI", "1")
from rq import Queue, SimpleWorker
from helpdesk import create_app
from helpdesk.jobs import redis_connection
app = create_app()
with app.app_context():
    conn = redis_connection()
    SimpleWorker([Queue("notify", connection=conn)], connection=conn).work(burst=True, logging_level="WARNING")
"""


class CountingSink:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=("fork", "simple"), default="simple")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL (see the docstring)")
    from aiosmtpd.controller import Controller
    from rq import Queue
    from sqlalchemy import func, select

    from helpdesk import create_app
    from helpdesk.extensions import db
    from helpdesk.jobs import redis_connection
    from helpdesk.notify import service
    from helpdesk.notify.models import DeliveryAttempt, Outbox

    sink = CountingSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    env = dict(os.environ, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(port), HELPDESK_CLI="1",
               BASE_URL=os.environ.get("BASE_URL", "http://127.0.0.1:5000"))  # the worker refuses to start without
    os.environ.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(port))
    app = create_app()
    try:
        with app.app_context():
            db.create_all()
            session = db.session
            Queue("notify", connection=redis_connection()).empty()
            for key in redis_connection().scan_iter("helpdesk:batch*"):  # lists left by an earlier run
                redis_connection().delete(key)
            session.execute(DeliveryAttempt.__table__.delete())
            session.execute(Outbox.__table__.delete())
            session.commit()
            started = time.perf_counter()
            for i in range(args.mails):
                service.queue_email(session, to=f"user{i}@example.jp", subject=f"[HD-{i:06d}] ベンチマーク {i}",
                                    body_text="本文です。\n" * 20, body_html="<p>本文です。</p>" * 20,
                                    purpose="bench", dedupe_key=f"bench:{i}")
                if i % 500 == 499:
                    session.commit()  # jobs are enqueued after each commit
            session.commit()
            queued = time.perf_counter() - started
            print(f"queued {args.mails:,} mails (rows + batch hand-over) in {queued:.2f} s")
        cmd = ([sys.executable, "-c", SIMPLE_WORKER] if args.worker_class == "simple" else
               [sys.executable, "-c", "from helpdesk.cli import main; main()", "worker", "-q", "notify", "--burst"])
        started = time.perf_counter()
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env) for _ in range(args.workers)]
        with app.app_context():
            while True:
                sent = db.session.scalar(select(func.count()).select_from(Outbox).where(Outbox.state == "sent"))
                db.session.rollback()
                if sent >= args.mails or all(p.poll() is not None for p in procs):
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            states = service.outbox_stats(db.session)
        print(f"{args.workers} {args.worker_class} workers: {sent:,} sent in {elapsed:.2f} s = "
              f"{sent / elapsed:,.0f} mails/s; sink received {sink.count:,}; outbox states {states}", flush=True)
        for p in procs:  # the jobs of rows drained by another job are no-ops; let the workers finish them
            try:
                p.wait(timeout=600)
            except subprocess.TimeoutExpired:
                p.terminate()
        print(f"workers done after {time.perf_counter() - started:.2f} s (every job run, most as no-ops); "
              f"sink received {sink.count:,} (no mail twice: {sink.count == args.mails})")
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
