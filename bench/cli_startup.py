"""Wall time of CLI commands from process start to exit (issue 12: `kb suggest` under 1.5 s).

    .venv/bin/python bench/cli_startup.py [--runs 7] [--instance /tmp/demo-instance]

Each command runs as a fresh process (what an operator or a script does), so the figure includes
the interpreter start, imports and the command's own work. Prints median and max per command.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HELPDESK = str(Path(sys.executable).with_name("helpdesk"))
COMMANDS = [
    ["kb", "suggest", "ログインできない", "--json"],
    ["kb", "suggest", "納品予定日が表示されない", "--role", "clinic", "--json"],
    ["--help"],
    ["insights", "trends", "--json"],
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--instance", default=None, help="HELPDESK_INSTANCE for commands that need the database")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.instance:
        env["HELPDESK_INSTANCE"] = args.instance
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores); {args.runs} runs each")
    for command in COMMANDS:
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = subprocess.run([HELPDESK, *command], env=env, capture_output=True)
            times.append(time.perf_counter() - started)
            if result.returncode != 0:
                print(f"  {' '.join(command)}: exit {result.returncode}: {result.stderr.decode()[-300:]}")
                break
        print(f"{' '.join(command)[:48]:<50} median {statistics.median(times):6.2f} s   max {max(times):6.2f} s")


if __name__ == "__main__":
    main()
