"""Two stateless app nodes: two gunicorn instances on one PostgreSQL + Redis + S3-compatible store, behind a
real haproxy; an agent journey alternates nodes (login, intake, attachment, reply, live queue update,
download from the other node), and haproxy spreads requests over both. PostgreSQL run only."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from tests.ops.conftest import ON_PG, migrate, ops_app
from tests.ops.test_storage import _free_port, bucket, s3_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not ON_PG, reason="needs PostgreSQL + Redis (HELPDESK_TEST_DATABASE_URL)")
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "Two-Nodes-Passw0rd!"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x03" * 48


class _Form(HTMLParser):
    """Default values of the fields of the form whose action ends with `action` ("(self)": no action)."""

    def __init__(self, action: str):
        super().__init__()
        self.action, self.inside, self.values, self._select = action, False, {}, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            target = (a.get("action") or "").split("?")[0]
            self.inside = target.endswith(self.action) if target else self.action == "(self)"
        elif self.inside and tag == "input" and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            if a.get("type") != "file":
                self.values.setdefault(a["name"], a.get("value") or "")
        elif self.inside and tag == "textarea" and a.get("name"):
            self.values.setdefault(a["name"], "")
        elif self.inside and tag == "select":
            self._select = a.get("name")
        elif self.inside and tag == "option" and self._select:
            if "selected" in a or self._select not in self.values:
                self.values[self._select] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None


def form_values(html: str, action: str) -> dict:
    parser = _Form(action)
    parser.feed(html)
    assert parser.values, f"no form {action}"
    return parser.values


def _wait(url: str, proc, host: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/healthz", headers={"Host": host}, timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, f"{url} did not start"
        time.sleep(0.3)


@pytest.fixture
def cluster(new_database, tmp_path, s3_server, bucket):  # noqa: F811
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(haproxy):
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    url = new_database("postgresql")
    app = ops_app(url, str(tmp_path / "unused"))
    migrate(app)
    with app.app_context():
        from helpdesk.accounts.models import Organisation, User
        from helpdesk.accounts.passwords import hash_password
        from helpdesk.extensions import db

        db.session.add(Organisation(code="131016", name="千代田区", kind="municipality", prefecture="東京都"))

        db.session.add(User(email="agent@two.example.jp", name="受付 二号", roles="agent", state="activated",
                            password_hash=hash_password(PASSWORD), must_change_password=False))
        db.session.commit()
        db.engine.dispose()
    lb_port = _free_port_excluding(set())  # 5700-5739; the S3 server lives in 5740-5789
    procs = []
    base = dict(os.environ, DATABASE_URL=url, REDIS_URL=os.environ["HELPDESK_TEST_REDIS_URL"],
                SECRET_KEY="two-nodes-" + "k" * 32, BASE_URL=f"http://127.0.0.1:{lb_port}",
                ATTACHMENT_STORAGE="s3", S3_BUCKET=bucket, S3_ENDPOINT_URL=s3_server, S3_REGION="ap-northeast-1",
                UPLOAD_FOLDER=str(tmp_path / "must-stay-empty"), HELPDESK_LIVE_STREAM_SECONDS="8",
                LOG_FORMAT="text")
    base.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # Reserve the load balancer's port first, then one per node.
    lb_sock_port = lb_port
    nodes = []
    for name in ("a", "b"):
        port = _free_port_excluding({lb_sock_port, *[p for _, p in nodes]})
        proc = subprocess.Popen([str(BIN / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "4",
                                 "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "wsgi:app"],
                                env=dict(base, HELPDESK_NODE=name), cwd=ROOT,
                                stdout=open(tmp_path / f"{name}.log", "w"), stderr=subprocess.STDOUT)
        procs.append(proc)
        nodes.append((f"http://127.0.0.1:{port}", port))
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend desk
    bind 127.0.0.1:{lb_port}
    default_backend nodes
backend nodes
    balance roundrobin
    http-response set-header X-Node %s
    server a 127.0.0.1:{nodes[0][1]} check
    server b 127.0.0.1:{nodes[1][1]} check
""")
    host = f"127.0.0.1:{lb_port}"
    try:
        for (node_url, _), proc in zip(nodes, procs):
            _wait(node_url, proc, host)
        lb = subprocess.Popen([haproxy, "-f", str(cfg), "-db"], stdout=open(tmp_path / "haproxy.log", "w"),
                              stderr=subprocess.STDOUT)
        procs.append(lb)
        _wait(f"http://{host}", lb, host)
        yield {"nodes": [n for n, _ in nodes], "lb": f"http://{host}", "host": host, "db": url,
               "uploads": tmp_path / "must-stay-empty", "logs": tmp_path}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _free_port_excluding(taken: set[int]) -> int:
    import socket

    for port in range(5700, 5740):
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 5700-5739")


def test_agent_journey_alternating_nodes(cluster):
    a, b = cluster["nodes"]
    http = requests.Session()
    http.headers["Host"] = cluster["host"]

    # Log in on node A; the signed session cookie is valid on node B.
    page = http.get(a + "/login")
    values = form_values(page.text, "(self)")
    values.update(email="agent@two.example.jp", password=PASSWORD)
    assert http.post(a + "/login", data=values, allow_redirects=False).status_code == 302
    assert http.get(b + "/agent/queue").status_code == 200

    # Live queue: a stream opened on node A hears a change made on node B (Redis pub/sub).
    heard: list = []

    def listen():
        with http.get(a + "/agent/queue/stream", stream=True, timeout=15) as response:
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("data:") and '"ref"' in line:
                    heard.append(json.loads(line[5:]))
                    return

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(1.5)  # the stream subscribes

    # Intake on node B.
    values = form_values(http.get(b + "/agent/intake").text, "/agent/intake")
    values.update(subject="二拠点テスト：ログインできません", description="初期パスワードで入れません。",
                  new_name="二拠点 太郎", new_phone="03-5555-1234", new_org_code="131016")
    response = http.post(b + "/agent/intake", data=values, allow_redirects=True)
    assert response.status_code == 200, re.findall(r'class="[^"]*error[^"]*"[^>]*>([^<]*)', response.text)
    ref = re.search(r"HD-\d{6}", response.text).group(0)
    listener.join(timeout=15)
    assert heard and heard[0]["ref"] == ref, "node A's live stream did not hear the ticket created on node B"

    # Attachment uploaded on node A (into the object store), reply on node B.
    detail = http.get(a + f"/tickets/{ref}")
    assert detail.status_code == 200
    values = form_values(detail.text, f"/tickets/{ref}/attachments")
    values.update(visibility="public", note="画面です")
    response = http.post(a + f"/tickets/{ref}/attachments", data=values,
                         files={"files": ("画面.png", PNG, "image/png")}, allow_redirects=False)
    assert response.status_code == 302
    detail = http.get(b + f"/tickets/{ref}")
    values = form_values(detail.text, f"/tickets/{ref}/reply")
    values.update(body="パスワードを再設定しました。", visibility="public")
    assert http.post(b + f"/tickets/{ref}/reply", data=values, allow_redirects=False).status_code == 302

    # Download on node B the file uploaded through node A; nothing was written to a node's disk.
    detail = http.get(a + f"/tickets/{ref}").text
    assert "パスワードを再設定しました。" in detail
    attachment_id = re.search(r"/attachments/(\d+)", detail).group(1)
    download = http.get(b + f"/attachments/{attachment_id}")
    assert download.status_code == 200 and download.content == PNG
    assert not cluster["uploads"].exists() or not any(cluster["uploads"].rglob("*"))

    # Through haproxy: requests are spread over both nodes and the session works on either.
    served = {http.get(cluster["lb"] + f"/tickets/{ref}").headers.get("X-Node") for _ in range(6)}
    assert served == {"a", "b"}
