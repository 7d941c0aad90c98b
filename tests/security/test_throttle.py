"""Login throttling per account and per IP (Flask-Limiter), run in a child process.

The limiter is a process-wide extension object: enabling it here must not leak into the other tests.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json
from helpdesk import create_app
from helpdesk.extensions import db
from tests.conftest import base_config

app = create_app(base_config(SQLALCHEMY_DATABASE_URI="sqlite://", RATELIMIT_ENABLED=True,
                             RATELIMIT_STORAGE_URI="memory://", LOGIN_RATE_LIMIT="3 per minute", REDIS_URL=None))
with app.app_context():
    db.create_all()
client = app.test_client()
same_account = [client.post("/login", data={"email": "victim@example.jp", "password": "guess-%d" % i},
                            environ_base={"REMOTE_ADDR": "10.0.0.%d" % (i + 1)}).status_code for i in range(4)]
same_ip = [client.post("/login", data={"email": "user%d@example.jp" % i, "password": "guess"},
                       environ_base={"REMOTE_ADDR": "192.0.2.50"}).status_code for i in range(4)]
other = client.post("/login", data={"email": "someone-else@example.jp", "password": "guess"},
                    environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code
page = client.post("/login", data={"email": "victim@example.jp", "password": "x"},
                   environ_base={"REMOTE_ADDR": "10.9.9.9"})
print(json.dumps({"same_account": same_account, "same_ip": same_ip, "other": other,
                  "body": page.get_data(as_text=True)[:4000]}))
"""


def test_login_is_throttled_per_account_and_per_ip():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # Different IPs, one account: the account limit stops the 4th guess.
    assert result["same_account"] == [401, 401, 401, 429]
    # One IP, different accounts: the IP limit stops the 4th.
    assert result["same_ip"] == [401, 401, 401, 429]
    # Someone else from elsewhere is not affected.
    assert result["other"] == 401
    assert "しばらく待ってから" in result["body"] and "Traceback" not in result["body"]
