"""HTTP benchmark of the agent queue, search, ticket page and ticket creation (prints figures).

Start the app under gunicorn on a seeded database first (see bench/tickets_setup.py), e.g.

    BASE_URL=http://127.0.0.1:8006 DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_tickets SECRET_KEY=bench \\
    REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/gunicorn -w 2 -k gthread --threads 2 --reuse-port \\
        -b 127.0.0.1:8006 wsgi:app
    .venv/bin/python bench/tickets_http.py --base http://127.0.0.1:8006 --requests 300 --threads 4

Each worker thread logs in once as the demo agent and keeps one keep-alive connection. Figures are
wall-clock latencies of whole HTTP requests (p50 / p95 / max) and requests per second.
"""
from __future__ import annotations

import argparse
import http.client
import random
import re
import statistics
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

AGENT = "agent1@helpdesk.example.jp"
REQUESTER = "clinic@chiyoda-naika.example.jp"
PASSWORD = "Demo-Passw0rd!"
SEARCHES = ["ログインできない", "納品予定日", "印刷", "接種記録 修正", "パスワード再設定メール", "証明書エラー",
            "配送先住所", "廃棄", "エラーコード", "Edge"]
FILTERED = ["status=open&priority=P2", "status=active&category=delivery&role=clinic",
            "status=pending&sort=updated", "assignee=none&status=active&sort=priority",
            "tier=L2&status=escalated", "status=active&sla=breached&sort=due"]

#: Filters a search is combined with (issue 19: these failed on PostgreSQL with 3+ character searches).
SEARCH_WITHIN = [("open", "status=open"), ("active", "status=active"), ("a category", "category=login"),
                 ("priority P2", "priority=P2"), ("mine", "assignee=me&status=active")]


class Client:
    """One keep-alive connection with a cookie jar of one session cookie."""

    def __init__(self, base: str):
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None,
                keep_cookies: bool = True) -> tuple[int, str, dict]:
        """One request; `keep_cookies=False` ignores the answer's Set-Cookie (see create_tickets)."""
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read().decode("utf-8", "replace")
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt == 2:
                    raise
        for header, value in resp.getheaders():
            if keep_cookies and header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return resp.status, data, dict(resp.getheaders())

    def login(self, email: str) -> None:
        status, html, _ = self.request("GET", "/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        status, html, headers = self.request("POST", "/login", {"csrf_token": token, "email": email,
                                                                "password": PASSWORD})
        if status != 302:
            raise SystemExit(f"login failed for {email}: {status}")


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


_LOCAL = threading.local()


def run(name: str, base: str, paths: list[str], threads: int, email: str = AGENT, expect: int = 200) -> None:
    def client() -> Client:
        # One logged-in client per thread for the whole run (logins are rate limited).
        if getattr(_LOCAL, "email", None) != email:
            _LOCAL.c = Client(base)
            _LOCAL.c.login(email)
            _LOCAL.email = email
        return _LOCAL.c

    # Log every thread in before timing.
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: client(), range(threads * 4)))

    def one(path: str) -> float:
        c = client()
        started = time.perf_counter()
        status, _, _ = c.request("GET", path)
        elapsed = time.perf_counter() - started
        if status != expect:
            raise RuntimeError(f"{path}: HTTP {status}")
        return elapsed * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        times = list(pool.map(one, paths))
    wall = time.perf_counter() - started
    print(f"{name:<28} n={len(times):<5} p50={statistics.median(times):7.1f} ms  p95={_pct(times, 95):7.1f} ms  "
          f"max={max(times):7.1f} ms  {len(times) / wall:6.1f} req/s")


def create_tickets(base: str, n: int, threads: int) -> None:
    """Submit the requester portal's new-ticket form n times (GET form + POST), if the portal exists.

    The POST answers with a redirect and a session cookie carrying the "received" flash message; a
    browser follows the redirect, which shows and removes the message. The benchmark does not follow
    it, so it keeps its earlier cookie instead (otherwise every POST would add one more message to the
    cookie and each later request would carry, sign and verify a growing cookie).
    """
    probe = Client(base)
    probe.login(REQUESTER)
    status, html, _ = probe.request("GET", "/portal/new")
    if status != 200:
        print(f"{'ticket creation (form)':<28} skipped: /portal/new answered {status}")
        return
    local = threading.local()

    def client() -> Client:
        if not hasattr(local, "c"):
            local.c = Client(base)
            local.c.login(REQUESTER)
        return local.c

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: client(), range(threads * 4)))

    def form_fields(page: str) -> dict:
        form = re.search(r'<form[^>]*method="post"[^>]*action="/portal/new"[^>]*>(.*?)</form>', page, re.S)
        form = form.group(1) if form else page
        fields = {}
        for tag in re.findall(r"<input[^>]*>", form):
            name = re.search(r'name="([^"]+)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name and ('type="hidden"' in tag):
                fields[name.group(1)] = value.group(1) if value else ""
        for select in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
            options = re.findall(r'<option[^>]*value="([^"]+)"', select[1])
            if options:
                fields[select[0]] = options[-1]
        return fields

    def one(i: int) -> float:
        c = client()
        started = time.perf_counter()
        status, page, _ = c.request("GET", "/portal/new")
        fields = form_fields(page)
        fields.update({"subject": f"ベンチマーク {i} 納品予定日が表示されない",
                       "body": "希望数量を登録しましたが納品予定日が空欄のままです。", "description":
                       "希望数量を登録しましたが納品予定日が空欄のままです。"})
        status, _, _ = c.request("POST", "/portal/new", fields, keep_cookies=False)
        if status not in (302, 303):
            raise RuntimeError(f"create: HTTP {status}")
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        times = list(pool.map(one, range(n)))
    wall = time.perf_counter() - started
    print(f"{'ticket creation (form)':<28} n={n:<5} p50={statistics.median(times):7.1f} ms  "
          f"p95={_pct(times, 95):7.1f} ms  {n / wall:6.1f} tickets/s (GET form + POST each)")

    # The POST alone (the agent/requester had the form open already): forms fetched first, untimed.
    def fetch(i: int):
        c = client()
        _, page, _ = c.request("GET", "/portal/new")
        fields = form_fields(page)
        fields.update({"subject": f"ベンチマーク POST {i}", "description": "配送先住所を変更したいです。"})
        return c, fields

    def post(item) -> float:
        c, fields = item
        started = time.perf_counter()
        status, _, _ = c.request("POST", "/portal/new", fields, keep_cookies=False)
        if status not in (302, 303):
            raise RuntimeError(f"create: HTTP {status}")
        return (time.perf_counter() - started) * 1000

    # Each thread posts the forms it fetched itself (its own session cookie).
    def fetch_and_post(chunk: range) -> list[float]:
        items = [fetch(i) for i in chunk]
        barrier.wait()
        return [post(item) for item in items]

    per = n // threads
    barrier = threading.Barrier(threads + 1)
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(fetch_and_post, range(t * per, (t + 1) * per)) for t in range(threads)]
        barrier.wait()
        started = time.perf_counter()
        times = [x for f in futures for x in f.result()]
    wall = time.perf_counter() - started
    print(f"{'ticket creation (POST only)':<28} n={len(times):<5} p50={statistics.median(times):7.1f} ms  "
          f"p95={_pct(times, 95):7.1f} ms  {len(times) / wall:6.1f} tickets/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8006")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-id", type=int, required=True, help="highest ticket id (ticket pages are random ids)")
    parser.add_argument("--create", type=int, default=0, help="tickets to create through the portal form")
    parser.add_argument("--only", choices=["queue", "search", "filtered-search", "ticket", "create"], default=None)
    args = parser.parse_args()
    n, rng = args.requests, random.Random(5)
    if args.only in (None, "queue"):
        run("queue default view", args.base, ["/agent/queue"] * n, args.threads)
        run("queue page 2..5 (cursor)", args.base, _cursor_paths(args.base, 4) * (n // 4), args.threads)
        run("queue filtered view", args.base, [f"/agent/queue?{rng.choice(FILTERED)}" for _ in range(n)],
            args.threads)
    if args.only in (None, "search"):
        run("Japanese full-text search", args.base,
            [f"/agent/queue?q={urllib.parse.quote(rng.choice(SEARCHES))}" for _ in range(n)], args.threads)
        for q in SEARCHES:
            run(f"  search {q}", args.base, [f"/agent/queue?q={urllib.parse.quote(q)}"] * 20, args.threads)
    if args.only in (None, "filtered-search"):
        # Issue 19: a search inside a filtered queue (the agent's most frequent narrowing).
        for label, filt in SEARCH_WITHIN:
            run(f"search within {label}", args.base,
                [f"/agent/queue?{filt}&q={urllib.parse.quote(rng.choice(SEARCHES))}" for _ in range(n // 3)],
                args.threads)
    if args.only in (None, "ticket"):
        run("ticket page", args.base, [f"/tickets/HD-{rng.randint(1, args.max_id):06d}" for _ in range(n)],
            args.threads)
    if args.create and args.only in (None, "create"):
        create_tickets(args.base, args.create, args.threads)


def _cursor_paths(base: str, pages: int) -> list[str]:
    c = Client(base)
    c.login(AGENT)
    paths, path = [], "/agent/queue"
    for _ in range(pages):
        _, html, _ = c.request("GET", path)
        match = re.search(r'<a href="([^"]+)" rel="next"', html)
        if not match:
            break
        path = match.group(1).replace("&amp;", "&")
        paths.append(path)
    return paths


if __name__ == "__main__":
    main()
