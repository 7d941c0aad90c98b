"""API speed: POST /api/v1/tickets throughput and GET /api/v1/tickets latency, served by gunicorn.

    # once: schema + 1,000,000 tickets in your own database (created from template0, C.UTF-8)
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_api .venv/bin/python bench/api_speed.py setup --tickets 1000000
    # then (starts gunicorn itself, prints the figures)
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_api REDIS_URL=redis://127.0.0.1:6379/8 \
        .venv/bin/python bench/api_speed.py run

The load generator uses several processes with keep-alive connections (http.client) so it is not
the bottleneck of a single Python thread; it shares the 2 cores with gunicorn and PostgreSQL, so the
figures are conservative. When `wrk` is installed (apt-get install wrk) the POST load is repeated
with it: a C client leaves more of the 2 cores to the server. Targets: POST >= 300 req/s; GET p95 < 100 ms.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HELPDESK_CLI", "1")


def _app():
    from helpdesk import create_app

    return create_app()


def setup(tickets: int, seed: int) -> None:
    from helpdesk.db_setup import install_extras
    from helpdesk.demo import load_demo
    from helpdesk.extensions import db
    from helpdesk.tickets.seed import seed_tickets
    from helpdesk.tickets.service import ensure_categories

    app = _app()
    with app.app_context():
        db.create_all()
        install_extras(db.engine)
        ensure_categories(db.session)
        db.session.commit()
        load_demo(db.session)
        have = db.session.execute(db.text("SELECT count(*) FROM tickets")).scalar()
        if have < tickets:
            started = time.perf_counter()
            made = seed_tickets(db.session, tickets - have, rng=random.Random(seed), progress=print)
            print(f"seeded {made:,} tickets in {time.perf_counter() - started:.1f} s")
        db.session.execute(db.text("ANALYZE"))
        db.session.commit()
        print(f"tickets in the database: {db.session.execute(db.text('SELECT count(*) FROM tickets')).scalar():,}")


def make_tokens() -> dict[str, str]:
    """A staff token (agent1) and a requester token (chiyoda), created fresh for this run."""
    from helpdesk.api import service
    from helpdesk.audit import Actor
    from helpdesk.extensions import db

    app = _app()
    out = {}
    with app.app_context():
        db.create_all()  # tables added since setup (other domains) — additive only
        stamp = int(time.time())
        for label, email in (("staff", "agent1@helpdesk.example.jp"), ("requester", "chiyoda@city.example.jp")):
            out[label] = service.create_token(db.session, name=f"bench-{label}-{stamp}", user_email=email,
                                              scopes=["read", "tickets:write"], actor=Actor.system("bench")).plaintext
    return out


def _worker(kind: str, port: int, token: str, duration: float, queries: list[str], out: mp.Queue, seed: int) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies, errors, n = [], 0, 0
    deadline = time.perf_counter() + duration
    while time.perf_counter() < deadline:
        if kind == "post":
            body = json.dumps({"subject": f"APIベンチ {rng.randrange(10**6)}: ログインできません",
                               "body": "初期パスワードでログインできません。至急お願いします。",
                               "category": "login", "priority": "P3"}, ensure_ascii=False).encode()
            method, path = "POST", "/api/v1/tickets"
        else:
            body, method, path = None, "GET", queries[n % len(queries)]
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status in (200, 201)
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies.append(time.perf_counter() - started)
        errors += 0 if ok else 1
        n += 1
    out.put((latencies, errors))


def _cpu_seconds(pids) -> float:
    """utime + stime of the given processes (Linux /proc)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def _server_pids(master: int) -> tuple[list[int], list[int]]:
    """gunicorn workers + the PostgreSQL backends serving the benchmark database."""
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    from sqlalchemy import create_engine, text

    engine = create_engine(os.environ["DATABASE_URL"])
    with engine.connect() as conn:
        backends = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")).scalars().all()
    engine.dispose()
    return [int(p) for p in out], [int(p) for p in backends]


def _load(kind: str, port: int, token: str, duration: float, clients: int, queries=(), master: int | None = None) -> dict:
    out: mp.Queue = mp.Queue()
    app_pids, db_pids = _server_pids(master) if master else ([], [])
    cpu_app, cpu_db = _cpu_seconds(app_pids), _cpu_seconds(db_pids)
    procs = [mp.Process(target=_worker, args=(kind, port, token, duration, list(queries), out, i))
             for i in range(clients)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    cpu_app, cpu_db = _cpu_seconds(app_pids) - cpu_app, _cpu_seconds(db_pids) - cpu_db
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / duration, "elapsed": elapsed,
            "p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "mean_ms": statistics.fmean(lat) * 1000 if lat else 0,
            "app_cpu_ms": cpu_app * 1000 / max(len(lat), 1), "db_cpu_ms": cpu_db * 1000 / max(len(lat), 1)}


GET_QUERIES = [
    "/api/v1/tickets?limit=50",
    "/api/v1/tickets?status=active&limit=50",
    "/api/v1/tickets?status=new&priority=P1&limit=50",
    "/api/v1/tickets?category=login&limit=50",
    "/api/v1/tickets?role=clinic&status=open&limit=50",
    "/api/v1/tickets?sort=priority&status=active&limit=50",
    "/api/v1/tickets?created_from=2026-06-01&created_to=2026-06-30&limit=50",
    "/api/v1/tickets?q=%E3%83%91%E3%82%B9%E3%83%AF%E3%83%BC%E3%83%89&limit=20",  # q=パスワード
    "/api/v1/tickets?organisation=131016&limit=50",
    "/api/v1/tickets?assignee=none&status=new&limit=50",
]


def run(port: int, workers: int, threads: int, duration: float, post_clients: int, get_clients: int,
        repeat: int = 1, post_only: bool = False) -> None:
    tokens = make_tokens()
    # Production shape: jobs (mail, webhooks, SLA) go to RQ on Redis, the rate limiter counts in Redis.
    env = dict(os.environ, SECRET_KEY=os.environ.get("SECRET_KEY", "bench-secret"),
               BASE_URL=os.environ.get("BASE_URL", f"http://127.0.0.1:{port}"),
               REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/8"),
               HELPDESK_API_RATE_LIMIT="1000000 per minute", TICKET_CREATE_LIMIT_STAFF="1000000 per minute")
    env.pop("HELPDESK_CLI", None)
    # --reuse-port: one listening socket per worker, the kernel spreads new connections over them. Without
    # it a handful of keep-alive clients can all land on one worker (one core) and halve the figure.
    cmd = [os.path.join(ROOT, ".venv", "bin", "gunicorn"), "-w", str(workers), "-k", "gthread", "--threads",
           str(threads), "-b", f"127.0.0.1:{port}", "--reuse-port", "--keep-alive", "30", "--log-level", "warning",
           "wsgi:app"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/api/v1/openapi.json")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        print(f"gunicorn: {workers} workers x {threads} threads (gthread), PostgreSQL, {os.cpu_count()} CPUs")
        _load("get", port, tokens["staff"], 3, 2, GET_QUERIES)  # warm-up
        _load("post", port, tokens["requester"], 2, 2)
        load = os.getloadavg()[0]
        post = _load("post", port, tokens["requester"], duration, post_clients, master=server.pid)
        print(f"POST /api/v1/tickets: {post['rps']:.0f} req/s over {duration:.0f} s ({post['requests']} requests, "
              f"{post['errors']} errors, {post_clients} clients), p50 {post['p50_ms']:.1f} ms, "
              f"p95 {post['p95_ms']:.1f} ms  [target >= 300 req/s]")
        cost = post["app_cpu_ms"] + post["db_cpu_ms"]
        print(f"  CPU per POST: {post['app_cpu_ms']:.1f} ms gunicorn + {post['db_cpu_ms']:.1f} ms PostgreSQL "
              f"-> at most {2000 / cost:.0f} req/s on 2 dedicated cores (load average before the run: {load:.1f})")
        if shutil.which("wrk"):
            rates = []
            for _ in range(repeat):
                wrk = _wrk_post(port, tokens["requester"], duration, post_clients, master=server.pid)
                rates.append(wrk["rps"])
                print(f"POST /api/v1/tickets with wrk (C load generator, {post_clients} connections): "
                      f"{wrk['rps']:.0f} req/s over {duration:.0f} s, p50 {wrk['p50']}, p90 {wrk['p90']}, "
                      f"p99 {wrk['p99']}, {wrk['non2xx']} non-2xx  [target >= 300 req/s]")
                print(f"  CPU per POST: {wrk['app_cpu_ms']:.1f} ms gunicorn + {wrk['db_cpu_ms']:.1f} ms PostgreSQL")
            if repeat > 1:
                print(f"POST with wrk, {repeat} runs: median {statistics.median(rates):.0f} req/s, "
                      f"min {min(rates):.0f}, max {max(rates):.0f}")
        else:
            print("POST with wrk: skipped (apt-get install wrk for a load generator that takes less CPU)")
        if post_only:
            return
        get = _load("get", port, tokens["staff"], duration, get_clients, GET_QUERIES, master=server.pid)
        print(f"GET /api/v1/tickets?…: p50 {get['p50_ms']:.1f} ms, p95 {get['p95_ms']:.1f} ms, "
              f"p99 {get['p99_ms']:.1f} ms, {get['rps']:.0f} req/s ({get['requests']} requests, {get['errors']} errors, "
              f"{get_clients} clients, {len(GET_QUERIES)} query shapes)  [target p95 < 100 ms]")
        print(f"  CPU per GET: {get['app_cpu_ms']:.1f} ms gunicorn + {get['db_cpu_ms']:.1f} ms PostgreSQL")
        per_query = {}
        for q in GET_QUERIES:
            r = _load("get", port, tokens["staff"], 1.5, 1, [q])
            per_query[q] = r
            print(f"  {r['p95_ms']:7.1f} ms p95  {r['p50_ms']:7.1f} ms p50  {q}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        _drop_queued_jobs(env["REDIS_URL"])


_WRK_SCRIPT = """
local n = 0
request = function()
  n = n + 1
  local body = '{"subject": "APIベンチ wrk ' .. n .. ': ログインできません", "body": "初期パスワードで' ..
               'ログインできません。至急お願いします。", "category": "login", "priority": "P3"}'
  return wrk.format("POST", "/api/v1/tickets", {["Authorization"] = "Bearer " .. os.getenv("HD_TOKEN"),
                    ["Content-Type"] = "application/json"}, body)
end
"""


def _wrk_post(port: int, token: str, duration: float, connections: int, master: int) -> dict:
    """The same POST load from wrk: the Python clients above take a share of the 2 cores themselves."""
    import re
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_WRK_SCRIPT)
    env = dict(os.environ, HD_TOKEN=token)
    url = f"http://127.0.0.1:{port}"
    subprocess.run(["wrk", "-t1", f"-c{connections}", "-d2s", "-s", fh.name, url], env=env, capture_output=True)
    app_pids, db_pids = _server_pids(master)
    cpu_app, cpu_db = _cpu_seconds(app_pids), _cpu_seconds(db_pids)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency", "-s", fh.name, url],
                         env=env, capture_output=True, text=True).stdout
    cpu_app, cpu_db = _cpu_seconds(app_pids) - cpu_app, _cpu_seconds(db_pids) - cpu_db
    os.unlink(fh.name)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": pct.get("50"),
            "p90": pct.get("90"), "p99": pct.get("99"), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "app_cpu_ms": cpu_app * 1000 / max(total, 1), "db_cpu_ms": cpu_db * 1000 / max(total, 1)}


def _drop_queued_jobs(url: str) -> None:
    """No worker runs during the benchmark: forget the jobs it queued (only in the bench's Redis db)."""
    from redis import Redis
    from rq import Queue

    conn = Redis.from_url(url)
    for name in ("default", "notify", "sla", "insights"):
        Queue(name, connection=conn).empty()
    for key in conn.scan_iter("helpdesk:batch*"):  # coalesced batches (jobs.batch_after_commit)
        conn.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--tickets", type=int, default=1_000_000)
    s.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("run")
    r.add_argument("--port", type=int, default=8091)
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--duration", type=float, default=10)
    r.add_argument("--post-clients", type=int, default=8)
    r.add_argument("--get-clients", type=int, default=4)
    r.add_argument("--repeat", type=int, default=1, help="repeat the wrk POST run (the figure varies by a few %%)")
    r.add_argument("--post-only", action="store_true", help="skip the GET measurements")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        sys.exit("set DATABASE_URL to your PostgreSQL benchmark database")
    if args.cmd == "setup":
        setup(args.tickets, args.seed)
    else:
        run(args.port, args.workers, args.threads, args.duration, args.post_clients, args.get_clients,
            repeat=args.repeat, post_only=args.post_only)


if __name__ == "__main__":
    main()
