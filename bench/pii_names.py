"""Recall and false-mask rate of person-name masking (helpdesk.insights.pii, issue 13.11).

    .venv/bin/python bench/pii_names.py [--show-misses]

On bench/data/pii_names.jsonl (bench/make_pii_names_set.py): a name occurrence counts as masked when
every non-blank character of it is inside a masked span. Occurrences inside a decoy (an organisation
named after a surname, e.g. 田中クリニック) are not names. Prints recall (goal ≥ 0.95), the false-mask
rate (masked characters outside any labelled name / all masked characters), decoys masked, texts
without names that got a mask, the time per text, and the share of manual lines (which hold no person
names) that would get a mask.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from helpdesk.insights.pii import person_name_spans  # noqa: E402

DATA = ROOT / "bench" / "data" / "pii_names.jsonl"


def _occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    out, start = [], 0
    while needle and (i := text.find(needle, start)) >= 0:
        out.append((i, i + len(needle)))
        start = i + 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    person_name_spans("準備")  # load the dictionary outside the timing
    total = hit = masked_chars = wrong_chars = decoys = decoys_masked = plain = plain_masked = 0
    misses = []
    started = time.perf_counter()
    all_spans = [person_name_spans(r["text"]) for r in rows]
    elapsed = time.perf_counter() - started
    for row, spans in zip(rows, all_spans):
        text = row["text"]
        covered = set()
        for s, e in spans:
            covered.update(range(s, e))
        decoy_chars = {i for d in row["decoys"] for s, e in _occurrences(text, d) for i in range(s, e)}
        name_chars = set()
        for name in set(row["names"]):
            for s, e in _occurrences(text, name):
                if set(range(s, e)) & decoy_chars:
                    continue
                total += 1
                name_chars.update(range(s, e))
                if all(i in covered for i in range(s, e) if not text[i].isspace()):
                    hit += 1
                else:
                    misses.append((name, text))
        masked_chars += len(covered)
        wrong_chars += len({i for i in covered if i not in name_chars and not text[i].isspace()})
        for d in row["decoys"]:
            for s, e in _occurrences(text, d):
                decoys += 1
                decoys_masked += bool(set(range(s, e)) & covered)
        if not row["names"]:
            plain += 1
            plain_masked += bool(spans)
    print(f"texts: {len(rows)}  name occurrences: {total}  decoys: {decoys}")
    print(f"recall (names masked): {hit}/{total} = {hit / total:.3f}   (goal >= 0.95)")
    print(f"false-mask rate (masked chars outside names): {wrong_chars}/{masked_chars} = "
          f"{wrong_chars / max(masked_chars, 1):.3f}")
    print(f"decoys (organisations named after a person, places) touched by a mask: {decoys_masked}/{decoys}")
    print(f"texts without a name that got a mask: {plain_masked}/{plain}")
    print(f"time: {elapsed / len(rows) * 1000:.2f} ms per text (MeCab loaded beforehand)")
    # Text with no person names at all: every line of the Japanese manuals.
    lines = [ln.strip() for f in sorted((ROOT / "manuals").glob("*/*.ja.md"))
             for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("---")]
    flagged = [(ln, [ln[s:e] for s, e in person_name_spans(ln)]) for ln in lines]
    flagged = [(ln, found) for ln, found in flagged if found]
    print(f"manual lines (no person names) with a false mask: {len(flagged)}/{len(lines)} = "
          f"{len(flagged) / max(len(lines), 1):.4f}  {[found for _ln, found in flagged][:10]}")
    if args.show_misses:
        for name, text in misses:
            print(f"MISS {name!r}: {text!r}")


if __name__ == "__main__":
    main()
