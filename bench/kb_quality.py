"""Ranking quality of KnowledgeBase.suggest on bench/data/kb_queries.jsonl: hit@1, hit@3, MRR.

Usage: .venv/bin/python bench/kb_quality.py [--manuals manuals] [--queries bench/data/kb_queries.jsonl]
       [--tokenizer ngram|morph|combo|all] [--no-role] [--show-misses]

Measured figures (see the report; filled in after the real content landed):
MEASURED
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge_base import KnowledgeBase  # noqa: E402
from knowledge_base.text import TOKENIZERS  # noqa: E402


def evaluate(kb: KnowledgeBase, queries: list[dict], use_role: bool = True, show_misses: bool = False) -> dict:
    groups: dict[str, list[float]] = {}
    for q in queries:
        hits = kb.suggest(q["query"], role=q.get("role") if use_role else None, k=10)
        slugs = [h.slug for h in hits]
        rank = slugs.index(q["slug"]) + 1 if q["slug"] in slugs else 0
        for g in ("all", q["lang"]):
            groups.setdefault(g, []).append(rank)
        if show_misses and rank != 1:
            print(f"  miss(rank={rank or '-'}) {q['slug']:<24} {q['query']}  -> {slugs[:3]}")
    out = {}
    for g, ranks in groups.items():
        n = len(ranks)
        out[g] = {"n": n, "hit@1": sum(r == 1 for r in ranks) / n, "hit@3": sum(1 <= r <= 3 for r in ranks) / n,
                  "mrr": sum(1 / r for r in ranks if r) / n}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manuals", default="manuals")
    ap.add_argument("--queries", default=str(Path(__file__).with_name("data") / "kb_queries.jsonl"))
    ap.add_argument("--tokenizer", default="all", choices=[*TOKENIZERS, "all"])
    ap.add_argument("--no-role", action="store_true", help="ignore the queries' role labels")
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    queries = [json.loads(line) for line in Path(args.queries).read_text(encoding="utf-8").splitlines() if line.strip()]
    names = list(TOKENIZERS) if args.tokenizer == "all" else [args.tokenizer]
    print(f"{len(queries)} queries, manuals={args.manuals}, role={'no' if args.no_role else 'yes'}")
    for name in names:
        t0 = time.perf_counter()
        kb = KnowledgeBase.load(args.manuals, tokenizer=name, strict=False)
        build = (time.perf_counter() - t0) * 1000
        known = {a.slug for a in kb.articles}
        usable = [q for q in queries if q["slug"] in known]
        if name == names[0] and (kb.errors or len(usable) < len(queries)):
            print(f"note: {len(kb.errors)} content error(s); {len(queries) - len(usable)} queries skipped "
                  f"(their article is missing)")
        res = evaluate(kb, usable, use_role=not args.no_role, show_misses=args.show_misses)
        for g in ("all", "ja", "en"):
            if g in res:
                r = res[g]
                print(f"{name:<6} {g:<3} n={r['n']:<4} hit@1={r['hit@1']:.3f} hit@3={r['hit@3']:.3f} "
                      f"MRR={r['mrr']:.3f}" + (f"  (load+index {build:.0f} ms)" if g == "all" else ""))


if __name__ == "__main__":
    main()
