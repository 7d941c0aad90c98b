"""Speed of KnowledgeBase.suggest with 200+ articles: p50/p95 in-process (and over HTTP with --http).

Usage: .venv/bin/python bench/kb_speed.py [--manuals manuals] [--extra 190] [--rounds 50] [--http]

Builds a temp manuals dir = the real manuals + ~190 synthetic slugs (each ja + en), loads it once,
then times `suggest` on realistic noisy ticket texts. With --http it also serves the Flask app on a
local port (embedded SQLite in the temp dir), signs an agent in and times GET /manuals/suggest.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


from kb_synthetic import SAMPLE_TICKETS, build_corpus  # noqa: E402

from knowledge_base import KnowledgeBase  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(label: str, timings: list[float]) -> None:
    print(f"{label}: n={len(timings)} p50={pct(timings, 50):.2f} ms p95={pct(timings, 95):.2f} ms "
          f"max={max(timings):.2f} ms mean={statistics.mean(timings):.2f} ms")


def bench_inprocess(corpus: Path, rounds: int) -> None:
    t0 = time.perf_counter()
    kb = KnowledgeBase.load(corpus)
    print(f"load+index: {(time.perf_counter() - t0) * 1000:.0f} ms for {len(kb.articles)} files "
          f"({len({a.slug for a in kb.articles})} slugs)")
    roles = [None, "municipality", "clinic", "wholesaler"]
    kb.suggest(SAMPLE_TICKETS[0])  # warm the tokenizer dictionary
    timings = []
    for r in range(rounds):
        for i, text in enumerate(SAMPLE_TICKETS):
            t = time.perf_counter()
            kb.suggest(text, role=roles[(i + r) % 4], k=5)
            timings.append((time.perf_counter() - t) * 1000)
    report("suggest in-process", timings)


def bench_http(corpus: Path, workdir: Path, rounds: int) -> None:
    """Serve the app (werkzeug, threaded, embedded SQLite) on loopback; sign an agent in; time the endpoint."""
    import http.client
    import threading
    import urllib.parse

    from werkzeug.serving import make_server

    from helpdesk import create_app
    from helpdesk.accounts.models import User
    from helpdesk.accounts.passwords import hash_password
    from helpdesk.extensions import db

    app = create_app({"TESTING": True, "SECRET_KEY": "bench-only", "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://", "REDIS_URL": None,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.db'}", "MANUALS_DIR": str(corpus),
                      "SESSION_COOKIE_SECURE": False})
    with app.app_context():
        db.create_all()
        db.session.add(User(email="bench-agent@example.jp", name="bench", roles="agent", state="activated",
                            password_hash=hash_password("Bench-Passw0rd!"), must_change_password=False))
        db.session.commit()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    port = server.server_port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("POST", "/login", body=urllib.parse.urlencode({"email": "bench-agent@example.jp",
                                                                    "password": "Bench-Passw0rd!"}),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        resp.read()
        cookie = "; ".join(c.split(";", 1)[0] for c in resp.headers.get_all("Set-Cookie") or [])
        if resp.status != 302 or not cookie:
            raise SystemExit(f"login failed: HTTP {resp.status}")
        roles = ["", "municipality", "clinic", "wholesaler"]
        timings = []
        for r in range(rounds + 1):
            for i, text in enumerate(SAMPLE_TICKETS):
                qs = urllib.parse.urlencode({"q": text, "role": roles[(i + r) % 4]})
                t = time.perf_counter()
                conn = http.client.HTTPConnection("127.0.0.1", port)
                conn.request("GET", f"/manuals/suggest?{qs}", headers={"Cookie": cookie, "Accept": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                elapsed = (time.perf_counter() - t) * 1000
                conn.close()
                if resp.status != 200 or b'"results"' not in body:
                    raise SystemExit(f"suggest failed: HTTP {resp.status} {body[:200]!r}")
                if r:  # round 0 warms the index and the tokenizer
                    timings.append(elapsed)
        report("GET /manuals/suggest over HTTP (new connection each)", timings)
    finally:
        server.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manuals", default="manuals")
    ap.add_argument("--extra", type=int, default=190)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--http", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb_speed_") as tmp:
        corpus = Path(tmp) / "manuals"
        n = build_corpus(Path(args.manuals), corpus, extra=args.extra)
        print(f"corpus: {n} slugs in {corpus}")
        bench_inprocess(corpus, args.rounds)
        if args.http:
            bench_http(corpus, Path(tmp), max(5, args.rounds // 5))


if __name__ == "__main__":
    main()
