"""Benchmark: `helpdesk import-users` with 100,000 users against a fresh PostgreSQL database.

    .venv/bin/python bench/import_users.py [--users 100000] [--db hd_accounts_bench] [--passwords 2000]

Generates bench/out/users_<N>.csv (git-ignored), drops and re-creates the database, runs the real
command (schema upgrade included) and prints the import time, then the re-import time (all unchanged),
then a re-import where 10% of the lines changed, then (optionally) the cost of --initial-passwords on a
smaller file. Exits non-zero when the first import takes 60 s or more.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpdesk.accounts.synthetic import email_for, make_orgs, person_name  # noqa: E402


def write_csv(path: Path, users: int, seed: int = 7, changed_every: int = 0) -> None:
    rng = random.Random(seed)
    orgs = make_orgs(max(30, users // 8), rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name", "org_code", "org_name", "org_kind", "prefecture", "roles"])
        for i in range(users):
            org = orgs[(i * 7919) % len(orgs)]
            name = person_name(rng)
            if changed_every and i % changed_every == 0:
                name += "（変更）"
            writer.writerow([email_for(i, org, random.Random(i)), name, org.code, org.name, org.kind,
                             org.prefecture, "requester"])


def run(cmd: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        print(proc.stdout, proc.stderr, file=sys.stderr)
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    return elapsed, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--db", default="hd_accounts_bench")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--passwords", type=int, default=2000, help="users in the --initial-passwords run (0 = skip)")
    args = parser.parse_args()

    data = ROOT / "bench" / "out"  # generated files (git-ignored)
    first = data / f"users_{args.users}.csv"
    changed = data / f"users_{args.users}_changed.csv"
    t = time.perf_counter()
    write_csv(first, args.users)
    write_csv(changed, args.users, changed_every=10)
    print(f"generated {first.name} ({first.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s")

    url = f"postgresql+psycopg://postgres@{args.host}:5432/{args.db}"
    env = {**os.environ, "DATABASE_URL": url, "HELPDESK_CLI": "1"}
    env.pop("REDIS_URL", None)
    subprocess.run(["dropdb", "-h", args.host, "-U", "postgres", "--if-exists", args.db], check=True)
    subprocess.run(["createdb", "-h", args.host, "-U", "postgres", "--template", "template0", "--locale",
                    "C.UTF-8", args.db], check=True)
    helpdesk = [str(ROOT / ".venv" / "bin" / "helpdesk")]
    t_schema, _ = run(helpdesk + ["db", "upgrade"], env)
    print(f"schema upgrade on the empty database: {t_schema:.1f} s")

    t1, out1 = run(helpdesk + ["import-users", str(first)], env)
    print(f"import {args.users:,} users (fresh PostgreSQL): {t1:.1f} s  -> {out1}")
    t2, out2 = run(helpdesk + ["import-users", str(first)], env)
    print(f"re-import, nothing changed:               {t2:.1f} s  -> {out2}")
    t3, out3 = run(helpdesk + ["import-users", str(changed)], env)
    print(f"re-import, 10% of names changed:          {t3:.1f} s  -> {out3}")
    if args.passwords:
        small = data / f"users_pw_{args.passwords}.csv"
        rng_file = data / "initial_passwords.csv"
        with first.open(encoding="utf-8") as src, small.open("w", encoding="utf-8") as dst:
            header = src.readline()
            dst.write(header)
            for i, line in enumerate(src):
                if i >= args.passwords:
                    break
                dst.write(line.replace("@", "+pw@", 1))
        t4, out4 = run(helpdesk + ["import-users", str(small), "--initial-passwords", str(rng_file)], env)
        rate = args.passwords / t4
        print(f"--initial-passwords for {args.passwords:,} new users: {t4:.1f} s ({rate:.0f} users/s; "
              f"100k would take ~{100_000 / rate / 60:.0f} min)  -> {out4}")
        rng_file.unlink(missing_ok=True)
    print(f"RESULT import_100k_seconds={t1:.1f} reimport_seconds={t2:.1f}")
    if t1 >= 60:
        raise SystemExit("FAIL: the import took 60 s or more")


if __name__ == "__main__":
    main()
