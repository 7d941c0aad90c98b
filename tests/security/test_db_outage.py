"""A database outage answers 503 (never a stack trace) and the app recovers by itself (pool pre-ping)."""
from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DB, base_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_unreachable_gives_503():
    from helpdesk import create_app

    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/x",
                                 SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True,
                                                            "connect_args": {"connect_timeout": 2}},
                                 REDIS_URL=None))
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["checks"]["database"] == "down"
    response = client.post("/login", data={"email": "someone@example.jp", "password": "whatever-1"})
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "一時的に利用できません" in body and "Traceback" not in body and "psycopg" not in body


class _Proxy:
    """A TCP relay we can cut and restore, standing in for a PostgreSQL restart."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream, self.port = upstream, _free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.sockets.clear()


def _app_behind(proxy, url, **config):
    from helpdesk import create_app

    return create_app(base_config(
        SQLALCHEMY_DATABASE_URI=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}, **config.pop("engine", {})},
        REDIS_URL=None, **config))


needs_postgres = pytest.mark.skipif(not TEST_DB.startswith("postgresql"),
                                    reason="needs PostgreSQL (HELPDESK_TEST_DATABASE_URL)")


@needs_postgres
@pytest.mark.parametrize("ping", ["every checkout", "when idle (default)"])
def test_outage_then_recovery_without_restart(ping):
    url = make_url(TEST_DB)
    proxy = _Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    app = _app_behind(proxy, url, engine={"pool_pre_ping": True} if ping == "every checkout" else {})
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        unknown = {"email": "nobody-outage@example.jp", "password": "whatever-1"}
        assert client.post("/login", data=unknown).status_code == 401  # pooled connection now open
        proxy.stop()  # the database "restarts": every connection drops, new ones are refused
        assert client.get("/healthz").status_code == 503
        down = client.post("/login", data=unknown)
        assert down.status_code == 503 and "Traceback" not in down.get_data(as_text=True)
        proxy.start()  # back up: the same app serves again, no restart needed
        assert client.get("/healthz").status_code == 200
        assert client.post("/login", data=unknown).status_code == 401
    finally:
        proxy.stop()
        with app.app_context():
            from helpdesk.extensions import db

            db.engine.dispose()


@needs_postgres
@pytest.mark.parametrize("idle_seconds, first_answer", [(0.0, 200), (3600.0, 503)])
def test_connection_that_died_while_idle_is_replaced_before_use(idle_seconds, first_answer):
    """A pooled connection idle longer than DB_PING_IDLE_SECONDS is pinged before use: one the database
    dropped meanwhile is replaced and the request never notices. Without the ping (idle shorter than the
    threshold) the request that meets the dead connection gets 503, and the pool is renewed after it."""
    url = make_url(TEST_DB)
    proxy = _Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    app = _app_behind(proxy, url, DB_PING_IDLE_SECONDS=idle_seconds)
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200  # one pooled connection, now idle
        proxy.stop()
        proxy.start()  # the database restarted while nobody used the connection
        assert client.get("/healthz").status_code == first_answer
        assert client.get("/healthz").status_code == 200
    finally:
        proxy.stop()
        with app.app_context():
            from helpdesk.extensions import db

            db.engine.dispose()
