"""Crash drill (issue 13.13): a real RQ worker process is killed mid-batch while a real SMTP peer holds a mail.

Two `helpdesk worker` processes on PostgreSQL + Redis: A takes one job with six mails, B idles on the
notify queue. The SMTP peer accepts mails 1 and 2 and holds mail 3; A and its work horse are killed
(SIGKILL) while the horse waits. Then:
- every mail the peer accepted was recorded as sent before the next one was sent (one short
  transaction per send), so none of them is ever sent again;
- the killed job stranded exactly one row (the one it was sending) under its own short lease;
- B's sweeper hands the killed job's other rows on: they are delivered within 30 s of the kill;
- the stranded row is delivered once its lease has expired; every mail arrives exactly once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from email import message_from_bytes, policy

import pytest
from sqlalchemy import create_engine, delete, select, text

from tests.conftest import TEST_DB, TEST_REDIS, base_config
from tests.notify.conftest import Sink, free_port

pytestmark = pytest.mark.skipif(not (TEST_DB.startswith("postgresql") and TEST_REDIS),
                                reason="needs PostgreSQL and Redis (HELPDESK_TEST_DATABASE_URL/_REDIS_URL)")

MAILS = 6
HOLD = 2  # index of the mail the peer holds (the third)
LEASE = 8
DRILL_QUEUE = "notify-drill"


class HoldingPeer(Sink):
    """The aiosmtpd peer: accepts mails, holds one until released (then refuses it: never accepted), and
    checks at each acceptance that every mail accepted before it is already recorded as sent."""

    def __init__(self, port: int, engine, hold_id: int):
        super().__init__(port)
        self.engine, self.hold_id = engine, hold_id
        self.accepted: list[int] = []
        self.unrecorded: list[tuple[int, int]] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        outbox_id = int(msg["X-Helpdesk-Outbox"])
        if outbox_id == self.hold_id and not self.release.is_set():
            self.holding.set()
            while not self.release.is_set():
                time.sleep(0.05)  # blocks this peer's loop: the worker waits on our answer
            return "451 4.3.0 try again later"
        with self.engine.connect() as conn:
            for earlier in self.accepted:
                state = conn.execute(text("SELECT state FROM outbox WHERE id = :id"), {"id": earlier}).scalar()
                if state != "sent":
                    self.unrecorded.append((outbox_id, earlier))
        self.accepted.append(outbox_id)
        return "250 OK"

    def stop(self):
        self.release.set()
        super().stop()


def _worker(queue: str, port: int, log) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=TEST_DB, REDIS_URL=TEST_REDIS, MAIL_SERVER="127.0.0.1",
               MAIL_PORT=str(port), HELPDESK_NOTIFY_SWEEP_SECONDS="2", HELPDESK_NOTIFY_LEASE_SECONDS=str(LEASE),
               BASE_URL="http://127.0.0.1:5300")
    helpdesk = os.path.join(os.path.dirname(sys.executable), "helpdesk")
    return subprocess.Popen([helpdesk, "worker", "-q", queue], env=env, stdout=log, stderr=log,
                            start_new_session=True)


def _kill_worker(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its work horse (RQ runs each job in a forked child with its own session,
    so killing the worker's process group alone would leave the job running)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == proc.pid:  # the parent pid
                children.append(int(entry))
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert children, "the work horse was not found"


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_worker_killed_mid_batch_strands_one_row_and_sends_every_mail_once(tmp_path):
    from rq import Queue, Worker

    from helpdesk import create_app, jobs
    from helpdesk.extensions import db
    from helpdesk.notify import service
    from helpdesk.notify.models import DeliveryAttempt, Outbox

    app = create_app(base_config(REDIS_URL=TEST_REDIS, RQ_ASYNC=True, UPLOAD_FOLDER=str(tmp_path / "up")))
    port = free_port()
    engine = create_engine(TEST_DB)
    tag = uuid.uuid4().hex[:8]
    log = open(tmp_path / "workers.log", "w")
    worker_a = worker_b = peer = None
    ids: list[int] = []
    with app.app_context():
        connection = jobs.redis_connection()
        for q in (DRILL_QUEUE, "notify"):
            Queue(q, connection=connection).empty()
        try:
            # Both workers up and idle before the rows exist (their start-up sweep finds nothing).
            worker_a, worker_b = _worker(DRILL_QUEUE, port, log), _worker("notify", port, log)
            _wait(lambda: {DRILL_QUEUE, "notify"} <= {q for w in Worker.all(connection=connection)
                                                      for q in w.queue_names()}, 60, "both workers")
            for n in range(MAILS):
                row = service.queue_email(db.session, to=f"drill{n}-{tag}@example.jp", subject=f"drill {n}",
                                          body_text="本文", purpose="drill", dedupe_key=f"drill:{tag}:{n}")
                ids.append(row.id)
            db.session.info.pop("helpdesk_after_commit_batches", None)  # one job for all six, below
            db.session.commit()
            peer = HoldingPeer(port, engine, hold_id=ids[HOLD]).start()
            jobs.get_queue(DRILL_QUEUE).enqueue("helpdesk.notify.jobs.deliver_many", ids)

            _wait(peer.holding.is_set, 60, "the held mail")
            _kill_worker(worker_a)
            killed_at = time.monotonic()
            peer.release.set()

            def states():
                with engine.connect() as conn:
                    return dict(conn.execute(select(Outbox.id, Outbox.state).where(Outbox.id.in_(ids))).all())

            after_kill = states()
            assert [after_kill[i] for i in ids[:HOLD]] == ["sent"] * HOLD
            assert [i for i in ids if after_kill[i] == "sending"] == [ids[HOLD]]  # one row stranded
            # The killed job's other rows: delivered by B's sweeper within 30 s of the kill.
            others = ids[HOLD + 1:]
            _wait(lambda: all(states()[i] == "sent" for i in others), 30, "the killed job's other rows")
            assert time.monotonic() - killed_at < 30
            # The stranded row: once its lease has expired.
            _wait(lambda: states()[ids[HOLD]] == "sent", LEASE + 30, "the stranded row")
            time.sleep(3)  # a duplicate, if any, would arrive now
            assert sorted(peer.accepted) == sorted(ids)  # every mail exactly once
            assert peer.unrecorded == []  # each send recorded before the next one went out
        finally:
            _stop(worker_a)
            _stop(worker_b)
            if peer is not None:
                peer.stop()
            log.close()
            for q in (DRILL_QUEUE, "notify"):
                Queue(q, connection=connection).empty()
            if ids:
                db.session.rollback()
                db.session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.outbox_id.in_(ids)))
                db.session.execute(delete(Outbox).where(Outbox.id.in_(ids)))
                db.session.commit()
            db.session.remove()
            db.engine.dispose()
            engine.dispose()
