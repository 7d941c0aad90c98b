"""The app works through PgBouncer in transaction mode (a real pgbouncer process on a port of this run):
tickets, replies, search, queue and backups of the pooled database. PostgreSQL run only."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from tests.ops.conftest import ON_PG, migrate, ops_app

pytestmark = pytest.mark.skipif(not ON_PG, reason="needs PostgreSQL (HELPDESK_TEST_DATABASE_URL)")


def _port() -> int:
    for port in range(5790, 5800):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 5790-5799")


@pytest.fixture
def bouncer(new_database, tmp_path):
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    direct = new_database("postgresql")
    url = make_url(direct)
    port = _port()
    tmp_path = Path(tempfile.mkdtemp(prefix="hd-pgbouncer-"))  # readable by the user pgbouncer drops to
    tmp_path.chmod(0o777)
    (tmp_path / "users.txt").write_text(f'"{url.username}" ""\n')
    ini = tmp_path / "pgbouncer.ini"
    ini.write_text(f"""[databases]
{url.database} = host={url.host} port={url.port or 5432} dbname={url.database}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {tmp_path / 'users.txt'}
pool_mode = transaction
default_pool_size = 4
min_pool_size = 3
server_round_robin = 1
max_client_conn = 100
ignore_startup_parameters = extra_float_digits,options
logfile = {tmp_path / 'pgbouncer.log'}
pidfile = {tmp_path / 'pgbouncer.pid'}
""")
    ini.chmod(0o644)
    (tmp_path / "users.txt").chmod(0o644)
    user = [] if os.geteuid() != 0 else ["-u", "postgres"]  # pgbouncer refuses to run as root
    proc = subprocess.Popen([binary, *user, str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "pgbouncer.log").read_text()
        time.sleep(0.2)
    try:
        yield {"direct": direct, "pooled": url.set(port=port).render_as_string(hide_password=False)}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _warm(engine) -> None:
    """Three clients in a transaction at once: PgBouncer opens three server connections."""
    held = [engine.connect() for _ in range(3)]
    for conn in held:
        conn.execute(text("SELECT 1"))
    for conn in held:
        conn.close()


def _repeat_statement(engine) -> None:
    """One statement 20 times in separate transactions on one client connection (psycopg prepares it)."""
    _warm(engine)
    raw = engine.raw_connection()
    try:
        for n in range(20):
            with raw.driver_connection.cursor() as cur:
                cur.execute("SELECT count(*) FROM tickets WHERE id > %s", (n,))
                cur.fetchone()
            raw.driver_connection.commit()
    finally:
        raw.close()


def test_without_the_setting_prepared_statements_break(bouncer, tmp_path):
    """Why DATABASE_POOLER=pgbouncer exists: without it the driver's prepared statements get lost."""
    import psycopg

    from helpdesk.extensions import db

    migrate(ops_app(bouncer["direct"], str(tmp_path / "u")))
    app = ops_app(bouncer["pooled"], str(tmp_path / "u"))
    with app.app_context():
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            _repeat_statement(db.engine)
        db.engine.dispose()


def test_app_through_pgbouncer_transaction_mode(bouncer, tmp_path):
    from helpdesk.accounts.models import Organisation, User
    from helpdesk.audit import Actor
    from helpdesk.extensions import db
    from helpdesk.tickets import queue, service
    from helpdesk.tickets.models import Comment, Ticket

    migrate(ops_app(bouncer["direct"], str(tmp_path / "u")))  # migrations: direct, as the guide says
    app = ops_app(bouncer["pooled"], str(tmp_path / "u"), DATABASE_POOLER="pgbouncer")
    with app.app_context():
        org = Organisation(code="131016", name="千代田区", kind="municipality", prefecture="東京都")
        db.session.add(org)
        db.session.flush()
        user = User(email="p@city.example.jp", name="利用者 一", roles="requester", organisation_id=org.id)
        agent = User(email="a@helpdesk.example.jp", name="受付 一", roles="agent", state="activated")
        db.session.add_all([user, agent])
        db.session.commit()
        user_id, user_email, agent_id, org_id = user.id, user.email, agent.id, org.id
        refs = []
        # Many identical statements: psycopg would prepare them server-side after 5 runs, and a prepared
        # statement does not survive PgBouncer handing the next transaction another server connection.
        for n in range(30):
            ticket = service.create_ticket(db.session, actor=Actor(user_id, user_email), subject=f"ログインできません {n}",
                                           body="初期パスワードで入れません。", channel="web", requester_id=user_id,
                                           organisation_id=org_id)
            service.add_comment(db.session, ticket.id, "再設定しました。", Actor(agent_id, "a@helpdesk.example.jp"),
                                public=True)
            refs.append(ticket.ref)
            db.session.remove()
        assert db.session.scalar(select(func.count(Ticket.id))) == 30
        assert db.session.scalar(select(func.count(Comment.id))) == 30
        db.session.remove()
        pids = set()
        for _ in range(12):
            pids.add(db.session.execute(text("SELECT pg_backend_pid()")).scalar())
            db.session.commit()
        assert len(pids) > 1  # PgBouncer really hands transactions to different server connections
        _repeat_statement(db.engine)  # would fail with prepared statements (see below)
        for _ in range(8):  # the queue search (planner estimates, trigram index) through the pooler
            agent = db.session.get(User, agent_id)
            filters = queue.parse_filters({"q": "ログイン"})
            rows = queue.query_tickets(db.session, agent, filters)
            count = queue.count_tickets(db.session, agent, filters)
            db.session.remove()
        assert rows and count
        db.engine.dispose()
