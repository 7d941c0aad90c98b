"""A BM25F index over the fields of the articles (title and tags above headings above body)."""
from __future__ import annotations

import math
from collections import Counter
from typing import Callable, Iterable, Sequence

#: Field weights (BM25F): a term in the title counts four times a term in the body.
FIELD_WEIGHTS = {"title": 4.0, "tags": 3.0, "summary": 2.0, "headings": 2.0, "body": 1.0}
FIELD_B = {"title": 0.5, "tags": 0.3, "summary": 0.5, "headings": 0.6, "body": 0.75}
K1 = 1.2


class BM25FIndex:
    """Postings hold the saturated BM25F term weight per document, so a query is a few dict lookups."""

    def __init__(self, docs: Sequence[dict[str, str]], tokenize: Callable[[str], list[str]]):
        self.tokenize = tokenize
        self.n = len(docs)
        field_tokens = [{f: tokenize(d.get(f, "")) for f in FIELD_WEIGHTS} for d in docs]
        avg = {f: (sum(len(ft[f]) for ft in field_tokens) / self.n if self.n else 0.0) or 1.0 for f in FIELD_WEIGHTS}
        postings: dict[str, list[tuple[int, float]]] = {}
        #: The set of terms of each document (any field): how much of a query a document covers.
        self.doc_terms: list[frozenset[str]] = []
        for i, ft in enumerate(field_tokens):
            combined: Counter[str] = Counter()
            for f, toks in ft.items():
                if not toks:
                    continue
                norm = 1.0 - FIELD_B[f] + FIELD_B[f] * len(toks) / avg[f]
                w = FIELD_WEIGHTS[f] / norm
                for t, c in Counter(toks).items():
                    combined[t] += w * c
            for t, tf in combined.items():
                postings.setdefault(t, []).append((i, tf * (K1 + 1) / (tf + K1)))
            self.doc_terms.append(frozenset(combined))
        self.postings = postings
        self.idf = {t: math.log(1.0 + (self.n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()}

    def score(self, weighted_terms: Iterable[tuple[str, float]], allowed: set[int] | None = None) -> dict[int, float]:
        scores: dict[int, float] = {}
        for term, qw in weighted_terms:
            plist = self.postings.get(term)
            if not plist:
                continue
            w = qw * self.idf[term]
            for doc, sat in plist:
                if allowed is not None and doc not in allowed:
                    continue
                scores[doc] = scores.get(doc, 0.0) + w * sat
        return scores
