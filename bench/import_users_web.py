"""Benchmark: the browser's user import (issue 16.7) with 100,000 users on PostgreSQL + a real RQ worker.

    .venv/bin/python bench/import_users_web.py [--users 100000] [--db hd_h3_bench] [--redis redis://127.0.0.1:6379/3]

Drops and re-creates the database (schema as the tests build it: create_all + the PostgreSQL extras such
as the users' trigram indexes), signs in an administrator through the real login form, then through the
real HTTP views: uploads the file (dry run), confirms, and runs `helpdesk worker --burst` in a subprocess
while polling the progress endpoint like the browser does. Prints the dry-run time, the job's own time
(started_at → finished_at of the row) and the wall time from the confirm to 100 %, the progress values
seen, then the same for a second file where 10 % of the names changed and 20 organisations are renamed.
Exits non-zero when the 100k job takes 60 s or more.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import subprocess
import time
from pathlib import Path

from import_users import write_csv  # the sibling script (run as a script, its folder is on the path)

ROOT = Path(__file__).resolve().parent.parent


def renamed_copy(src: Path, dst: Path, renames: int) -> int:
    """Rename the first `renames` municipalities named in the file (every line of each), return how many."""
    with src.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    codes: dict[str, str] = {}
    for row in rows[1:]:
        if row[4] == "municipality" and row[2] not in codes and len(codes) < renames:
            codes[row[2]] = row[3] + "（新）"
    for row in rows[1:]:
        if row[2] in codes:
            row[3] = codes[row[2]]
    with dst.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return len(codes)


def run_import(client, path: Path, env: dict, label: str, renames_ok: bool) -> dict:
    data = path.read_bytes()
    started = time.perf_counter()
    response = client.post("/admin/users/import", data={"file": (io.BytesIO(data), path.name)},
                           content_type="multipart/form-data")
    dry = time.perf_counter() - started
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    public_id = re.search(r"/admin/users/import/([\w-]+)$", response.headers["Location"]).group(1)
    page = client.get(f"/admin/users/import/{public_id}").get_data(as_text=True)
    counts = dict(re.findall(r'data-count="(\w+)">([\d,]+)<', page))
    print(f"[{label}] file {len(data) / 1e6:.1f} MB; upload + dry run (HTTP): {dry:.1f} s -> {counts}")

    started = time.perf_counter()
    response = client.post(f"/admin/users/import/{public_id}/confirm",
                           data={"renames_ok": "y"} if renames_ok else {})
    assert response.status_code == 302, response.status_code
    worker = subprocess.Popen([str(ROOT / ".venv" / "bin" / "helpdesk"), "worker", "--burst"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    while True:
        body = client.get(f"/admin/users/import/{public_id}/status").get_json()
        if not seen or seen[-1] != body["percent"]:
            seen.append(body["percent"])
        if body["status"] in ("done", "failed"):
            break
        if worker.poll() is not None and body["status"] == "queued":
            raise SystemExit("worker ended without running the job:\n" + worker.stderr.read()[-3000:])
        time.sleep(0.25)
    wall = time.perf_counter() - started
    worker.wait(timeout=60)
    from helpdesk.accounts.models import UserImport
    from helpdesk.extensions import db

    with client.application.app_context():
        row = db.session.query(UserImport).filter_by(public_id=public_id).one()
        job = (row.finished_at - row.started_at).total_seconds()
        result = row.result["counts"] if row.result else row.error
    print(f"[{label}] job (worker, started -> finished): {job:.1f} s; confirm -> 100 % seen by the page: "
          f"{wall:.1f} s; progress seen: {seen}")
    print(f"[{label}] result: {result}")
    return {"dry": dry, "job": job, "wall": wall, "status": body["status"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--db", default="hd_h3_bench")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    args = parser.parse_args()

    out = ROOT / "bench" / "out"
    first = out / f"users_{args.users}.csv"
    changed = out / f"users_{args.users}_changed.csv"
    renamed = out / f"users_{args.users}_renamed.csv"
    write_csv(first, args.users)
    write_csv(changed, args.users, changed_every=10)
    n_renamed = renamed_copy(changed, renamed, 20)

    url = f"postgresql+psycopg://postgres@{args.host}:5432/{args.db}"
    subprocess.run(["dropdb", "-h", args.host, "-U", "postgres", "--if-exists", args.db], check=True)
    subprocess.run(["createdb", "-h", args.host, "-U", "postgres", "--template", "template0", "--locale",
                    "C.UTF-8", args.db], check=True)
    os.environ.update({"DATABASE_URL": url, "REDIS_URL": args.redis})
    env = {**os.environ, "HELPDESK_CLI": "1", "SECRET_KEY": "bench-secret", "BASE_URL": "http://127.0.0.1:5830"}

    from redis import Redis

    Redis.from_url(args.redis).flushdb()  # this benchmark's own Redis database: no stale jobs

    from helpdesk import create_app
    from helpdesk.accounts.models import User
    from helpdesk.accounts.passwords import hash_password
    from helpdesk.db_setup import install_extras
    from helpdesk.extensions import db

    app = create_app({"TESTING": True, "SECRET_KEY": "bench-secret", "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False, "SESSION_COOKIE_SECURE": False, "SQLALCHEMY_DATABASE_URI": url,
                      "REDIS_URL": args.redis, "RQ_ASYNC": True})
    with app.app_context():
        db.create_all()
        install_extras(db.engine)
        db.session.add(User(email="bench-admin@helpdesk.example.jp", name="ベンチ 管理", roles="admin",
                            password_hash=hash_password("Bench-Passw0rd!"), must_change_password=False,
                            state="activated"))
        db.session.commit()
    client = app.test_client()
    response = client.post("/login", data={"email": "bench-admin@helpdesk.example.jp",
                                           "password": "Bench-Passw0rd!"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]

    fresh = run_import(client, first, env, f"{args.users:,} new users", renames_ok=False)
    again = run_import(client, renamed, env, f"10% names changed, {n_renamed} organisations renamed",
                       renames_ok=True)
    print(f"RESULT web_import_job_seconds={fresh['job']:.1f} confirm_to_100pct_seconds={fresh['wall']:.1f} "
          f"dry_run_seconds={fresh['dry']:.1f} reimport_job_seconds={again['job']:.1f} "
          f"reimport_dry_run_seconds={again['dry']:.1f}")
    if fresh["status"] != "done" or fresh["job"] >= 60:
        raise SystemExit("FAIL: the 100k import job did not finish in under 60 s")


if __name__ == "__main__":
    main()
