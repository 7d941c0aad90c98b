"""A real SMTP peer on loopback (aiosmtpd) and helpers to point the app's mail settings at it."""
from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """Collects every message it receives; start()/stop() on a fixed port (to simulate an outage)."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list = []
        self.envelopes: list = []
        self.controller = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.envelopes.append(envelope)
            self.messages.append(message_from_bytes(envelope.original_content or envelope.content,
                                                    policy=policy.default))
        return "250 OK"

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def mail_port(app):
    """A free port the app sends mail to (nothing listens until a test starts a Sink on it)."""
    port = free_port()
    saved = app.config["MAIL_PORT"], app.config["MAIL_SERVER"]
    app.config["MAIL_PORT"], app.config["MAIL_SERVER"] = port, "127.0.0.1"
    yield port
    app.config["MAIL_PORT"], app.config["MAIL_SERVER"] = saved


@pytest.fixture
def smtp_sink(mail_port):
    sink = Sink(mail_port).start()
    yield sink
    sink.stop()
