"""Speed of KnowledgeBase.suggest with 200+ articles: p50/p95 in-process (and over HTTP with --http).

Usage: .venv/bin/python bench/kb_speed.py [--manuals manuals] [--extra 190] [--rounds 50] [--http]

Builds a temp manuals dir = the real manuals + ~190 synthetic slugs (each ja + en), loads it once,
then times `suggest` on realistic noisy ticket texts. With --http it also serves the Flask app on a
local port (embedded SQLite in the temp dir), signs an agent in and times GET /manuals/suggest.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    from http_bench import run_http_bench

    timings = run_http_bench(corpus, workdir, SAMPLE_TICKETS, rounds)
    report("GET /manuals/suggest over HTTP", timings)


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
