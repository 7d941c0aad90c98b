"""`make demo`'s command serves until stopped, and serves again on the same checkout (issue 12).

Runs the real console script (`helpdesk demo --port P`, what the Makefile calls) as a subprocess on
a free port, with its own instance folder (embedded SQLite), exactly as a newcomer would.
"""
from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

HELPDESK = Path(sys.executable).with_name("helpdesk")
START_TIMEOUT = 240  # seconds; a loaded CI machine migrates, loads manuals and demo data first


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    def __init__(self, instance: Path, port: int):
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL", "HELPDESK_CLI")}
        env["HELPDESK_INSTANCE"] = str(instance)
        self.port = port
        self.lines: list[str] = []
        self.proc = subprocess.Popen([str(HELPDESK), "demo", "--port", str(port)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     cwd=str(Path(__file__).resolve().parent.parent))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"demo exited ({self.proc.returncode}):\n{self.output}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail(f"demo did not answer /healthz within {START_TIMEOUT} s:\n{self.output}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl+C
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _sign_in_and_open_queue(port: int, email: str, password: str) -> str:
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "email": email, "password": password}).encode()
    opener.open(base + "/login", data=form, timeout=30).read()
    with opener.open(base + "/agent/queue", timeout=30) as response:
        assert response.status == 200 and response.url.endswith("/agent/queue"), response.url
        return response.read().decode()


@pytest.mark.slow
def test_demo_serves_until_stopped_and_again_on_the_same_checkout(tmp_path):
    instance = tmp_path / "instance"
    first = Demo(instance, _free_port())
    try:
        first.wait_healthy()
        out = first.output
        password = re.search(r"password for every account: (\S+)\)", out).group(1)
        agent = re.search(r"^\s+agent\s+(\S+@\S+)$", out, re.M).group(1)
        assert out.index("Demo logins") < out.index("Ctrl+C")  # logins printed before serving
        html = _sign_in_and_open_queue(first.port, agent, password)
        assert re.search(r"HD-\d{6}", html), "the queue shows demo tickets"
    finally:
        assert first.stop() == 0, first.output
    assert (instance / "helpdesk.db").exists()

    second = Demo(instance, _free_port())  # `make demo` again: the database is reused
    try:
        second.wait_healthy()
        assert "40 created" not in second.output and "computed" not in second.output
        _sign_in_and_open_queue(second.port, agent, password)
    finally:
        assert second.stop() == 0, second.output
