"""Ticket creation through the HTML forms, as a browser does it: phone intake (agent) and portal (requester).

Start the app under gunicorn 2 workers × 2 threads on a 1,000,000-ticket PostgreSQL database first
(bench/tickets_setup.py builds it), e.g.

    BASE_URL=http://127.0.0.1:5650 DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_ws_bench \\
    REDIS_URL=redis://127.0.0.1:6379/6 SECRET_KEY=bench .venv/bin/gunicorn -w 2 -k gthread --threads 2 \\
        --reuse-port -b 127.0.0.1:5650 wsgi:app
    .venv/bin/python bench/form_speed.py --base http://127.0.0.1:5650 --n 800 --threads 4

Each client thread signs in once and keeps its session cookie and one keep-alive connection. Every form
is fetched (GET, for its CSRF token and one-time nonce) before the timed phase, then the POSTs run: the
answer is a redirect, which is not followed, and its Set-Cookie (the flash message) is ignored, so the
cookie stays the one a browser has after the redirect shows and removes the message. Prints POST
latencies (p50 / p95) and tickets per second per form; nothing is asserted.
"""
from __future__ import annotations

import argparse
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tickets_http import AGENT, REQUESTER, Client, _pct  # noqa: E402

FORMS = {
    # name: (login, form path, form action, fields added to the hidden ones)
    "phone intake": (AGENT, "/agent/intake", "/agent/intake",
                     lambda i, caller: {"caller_id": caller, "subject": f"電話 {i} 納品予定日が表示されない",
                                        "description": "希望数量を登録したが納品予定日が空欄のまま。",
                                        "answer": "", "category": "delivery", "priority": "P3"}),
    "portal": (REQUESTER, "/portal/new", "/portal/new",
               lambda i, caller: {"subject": f"ポータル {i} 配送先住所を変更したい",
                                  "description": "配送先住所の変更手続きを教えてください。"}),
}


def hidden_fields(page: str, action: str) -> dict:
    form = re.search(r'<form[^>]*method="post"[^>]*action="' + re.escape(action) + r'"[^>]*>(.*?)</form>', page, re.S)
    form = form.group(1) if form else page
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = value.group(1) if value else ""
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        options = re.findall(r'<option[^>]*value="([^"]+)"', body)
        if options:
            fields[name] = options[-1]
    return fields


def caller_id(base: str) -> str:
    """A requester to pick in the intake form (found through the contacts type-ahead, as an agent does)."""
    import json

    c = Client(base)
    c.login(AGENT)
    _, body, _ = c.request("GET", "/agent/contacts?q=" + "chiyoda-naika")
    return str(json.loads(body)["results"][0]["id"])


def run(base: str, name: str, n: int, threads: int, caller: str) -> float:
    login, path, action, extra = FORMS[name]
    per = max(1, n // threads)
    barrier = threading.Barrier(threads + 1)

    def worker(t: int) -> list[float]:
        c = Client(base)
        c.login(login)
        items = []
        for i in range(t * per, (t + 1) * per):
            status, page, _ = c.request("GET", path)
            if status != 200:
                raise SystemExit(f"{name}: GET {path} answered {status}")
            fields = hidden_fields(page, action)
            fields.update(extra(i, caller))
            items.append(fields)
        barrier.wait()
        times = []
        for fields in items:
            started = time.perf_counter()
            status, body, _ = c.request("POST", action, fields, keep_cookies=False)
            if status not in (302, 303):
                raise SystemExit(f"{name}: POST answered {status}: {re.sub(r'<[^>]+>', ' ', body)[:300]}")
            times.append((time.perf_counter() - started) * 1000)
        return times

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(worker, t) for t in range(threads)]
        barrier.wait()
        started = time.perf_counter()
        times = [x for f in futures for x in f.result()]
    wall = time.perf_counter() - started
    rate = len(times) / wall
    print(f"{name + ' (POST)':<22} n={len(times):<5} threads={threads}  p50={statistics.median(times):6.1f} ms  "
          f"p95={_pct(times, 95):6.1f} ms  {rate:6.1f} tickets/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:5650")
    parser.add_argument("--n", type=int, default=800, help="tickets per form")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--only", choices=sorted(FORMS), default=None)
    args = parser.parse_args()
    caller = caller_id(args.base)
    for name in FORMS:
        if args.only in (None, name):
            run(args.base, name, args.n, args.threads, caller)


if __name__ == "__main__":
    main()
