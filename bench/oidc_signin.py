"""Single sign-on speed: how long the app's side of one OpenID Connect sign-in takes.

    .venv/bin/python bench/oidc_signin.py [--rounds 200]
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_bench .venv/bin/python bench/oidc_signin.py

Starts tests/accounts/oidc_provider.py in its own process on loopback (ports 5820-5829), builds the app on
a temporary SQLite file (or DATABASE_URL: tables are created if missing), creates one agent and signs it in
`--rounds` times through the Flask test client: GET /login/sso (discovery cached after the first), the
provider's /authorize with requests, GET /login/sso/callback (token request over HTTP, id_token checked
against the cached JWKS, user found by `sub`, audit row, commit), then logout. Prints median and p95 per
leg. The provider shares the 2 cores with the app, so the callback figure includes its RSA signing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    import requests

    from helpdesk import create_app
    from helpdesk.accounts.models import User
    from helpdesk.extensions import db
    from tests.accounts.oidc_provider import running_provider

    tmp = tempfile.mkdtemp(prefix="hd-oidc-bench-")
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
    callback = "http://127.0.0.1:5000/login/sso/callback"
    with running_provider([callback]) as provider:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                          "RATELIMIT_ENABLED": False, "RQ_ASYNC": False, "REDIS_URL": None, "WTF_CSRF_ENABLED": False,
                          "UPLOAD_FOLDER": f"{tmp}/uploads", "SESSION_COOKIE_SECURE": False,
                          "OIDC_ISSUER": provider.issuer, "OIDC_CLIENT_ID": provider.client_id,
                          "OIDC_CLIENT_SECRET": provider.client_secret})
        email = f"bench-{int(time.time())}@helpdesk.example.jp"
        with app.app_context():
            db.create_all()
            db.session.add(User(email=email, name="計測 太郎", roles="agent", must_change_password=False))
            db.session.commit()
        provider.control(user={"sub": f"bench-{email}", "email": email, "email_verified": True})
        client = app.test_client()
        legs = {"start (GET /login/sso)": [], "provider (/authorize)": [], "callback (token + id_token + DB)": []}
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            start = client.get("/login/sso")
            t1 = time.perf_counter()
            answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
            t2 = time.perf_counter()
            back = urlsplit(answer.headers["Location"])
            done = client.get(f"{back.path}?{back.query}")
            t3 = time.perf_counter()
            assert done.status_code == 302 and urlsplit(done.headers["Location"]).path != "/login", done.headers
            legs["start (GET /login/sso)"].append(t1 - t0)
            legs["provider (/authorize)"].append(t2 - t1)
            legs["callback (token + id_token + DB)"].append(t3 - t2)
            client.post("/logout")
        print(f"{args.rounds} single sign-ins on {url.split(':')[0]}")
        for name, values in legs.items():
            values = values[1:]  # the first trip also reads the discovery document and the JWKS
            print(f"  {name:34s} median {statistics.median(values) * 1000:6.1f} ms   "
                  f"p95 {_pct(values, 0.95) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
