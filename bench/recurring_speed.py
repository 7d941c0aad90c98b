"""Time recurring-issue detection over 100,000 synthetic tickets.

The tickets are generated like the labelled set (same problem pools, fresh random voices, names,
numbers, typos and widths), plus 15% one-off tickets made by mixing noise sentences. Prints the
time of each stage and the total; also scores the grouping against the generator's labels.

    .venv/bin/python bench/recurring_speed.py [N]
"""
from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import datetime as dt  # noqa: E402

from make_recurring_set import GROUPS, NOISE  # noqa: E402
from recurring_textkit import Writer  # noqa: E402

from helpdesk.insights import clustering  # noqa: E402


def synthesise(n: int, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    writer = Writer(rng, end=dt.date(2026, 11, 20), weeks=12, prefix="SP")
    total = sum(spec["size"] for spec in GROUPS.values())
    rows: list[dict] = []
    n_noise = int(n * 0.15)
    for name, spec in GROUPS.items():
        size = max(3, int((n - n_noise) * spec["size"] / total))
        rows.extend(writer.group_tickets(name, dict(spec, size=size, english=[])))
    bodies = [b for _, b, _ in NOISE]
    while len(rows) < n:
        a, b = rng.sample(bodies, 2)
        subject, _, kind = rng.choice(NOISE)
        rows.append(writer.noise_ticket(subject, f"{a}\n{b}", kind))
    rows = rows[:n]
    rows.sort(key=lambda r: r["created_at"])  # oldest first, as the DB query returns them
    return rows


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    started = time.perf_counter()
    rows = synthesise(n)
    print(f"generated {len(rows)} tickets in {time.perf_counter() - started:.1f} s")
    items = [(i, f"{r['subject']}\n{r['body']}") for i, r in enumerate(rows)]
    t0 = time.perf_counter()
    tokens, cleaned = clustering.prepare_items(items)
    t1 = time.perf_counter()
    order = list(range(len(items)))[::-1]
    groups, model = clustering.cluster_prepared(list(range(len(items))), tokens, cleaned, order=order)
    t2 = time.perf_counter()
    grouped = sum(len(g.keys) for g in groups)
    print(f"prepare (clean + tokenize, {os.cpu_count()} processes): {t1 - t0:.1f} s  "
          f"[done once per ticket on arrival and cached in insight_texts]")
    print(f"cluster newest {min(n, clustering.MAX_FULL)} + assign the other {max(0, n - clustering.MAX_FULL)}: "
          f"{t2 - t1:.1f} s  ({len(groups)} groups, {grouped} tickets grouped)")
    print(f"TOTAL cold run (nothing cached) over {n} tickets: {t2 - t0:.1f} s")
    print(f"TOTAL nightly run with cached preparation: {t2 - t1:.1f} s")
    new = synthesise(1000, seed=99)
    t3 = time.perf_counter()
    tok_new, clean_new = clustering.prepare_items([(i, f"{r['subject']}\n{r['body']}") for i, r in enumerate(new)])
    vectors, energy = model.project(model.transform(tok_new, clean_new))
    placed = sum(1 for g, i in clustering.assign_vectors(groups, vectors) if g is not None and energy[i] >= model.min_energy)
    t4 = time.perf_counter()
    print(f"incremental: 1000 new tickets prepared and assigned in {t4 - t3:.2f} s ({placed} placed in a group)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    # No quality figure here: mixing a small pool of noise sentences into 15,000 "one-off" tickets
    # makes them recur, so the labels no longer mean what they mean in the labelled set.


if __name__ == "__main__":
    main()
