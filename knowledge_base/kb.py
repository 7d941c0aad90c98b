"""The knowledge base: articles loaded from `manuals/`, searched and suggested."""
from __future__ import annotations

import hashlib
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from knowledge_base.content import LANGS, Article, ContentError, load_directory
from knowledge_base.index import BM25FIndex
from knowledge_base.text import (
    READING_PREFIX, detect_lang, get_tokenizer, normalize, strip_noise, synonym_expansions, tokens_ngram,
)

#: When a role is given, that role's own articles get this factor over `common` ones, so of two
#: close matches the role-specific article comes first; a clearly better common article still wins.
ROLE_BOOST = 1.15
#: Query terms found only through the synonym list count this much of a typed term.
SYNONYM_WEIGHT = 0.4
#: Reading-space terms ("@" bigrams of the hiragana reading, see text.tokens_reading) count this much of a
#: surface term: they rescue kana-typed and okurigana-variant queries without outvoting the written words.
READING_WEIGHT = 0.5
#: A document whose title + tags hold all of the query's (idf-weighted) terms gets this much extra:
#: score × (1 + TITLE_COVER × covered share). The title says what an article is *for*; the body of a
#: neighbouring article often mentions the same words in passing ("配送予定" in the delivery-completion steps).
TITLE_COVER = 1.0
EXCERPT_LEN = 140

_MD_MARKUP_RE = re.compile(r"^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)|[*_`|]|!\[[^\]]*\]\([^)]*\)|\[([^\]]*)\]\([^)]*\)")
_SENTENCE_RE = re.compile(r"[^。！？!?\n]+[。！？!?]?")


@dataclass(frozen=True)
class Hit:
    slug: str
    title: str
    role: str
    lang: str
    score: float
    excerpt: str
    #: Share (0–1) of the query's typed terms, idf-weighted, found anywhere in the article: a score-scale-free
    #: confidence used to spot searches without a good answer (the content-gap page).
    coverage: float = 0.0


def _plain(line: str) -> str:
    return _MD_MARKUP_RE.sub(lambda m: m.group(1) or "", line).strip()


def _sentences(body: str) -> list[str]:
    out: list[str] = []
    in_fence = False
    for line in body.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence or line.lstrip().startswith("#"):
            continue
        text = _plain(line)
        for s in _SENTENCE_RE.findall(text):
            s = s.strip()
            if len(s) >= 6:
                out.append(s)
    return out


def directory_fingerprint(directory: str | os.PathLike) -> str:
    """A cheap fingerprint of the manual files (names, sizes, mtimes) to know when to reload."""
    h = hashlib.sha256()
    root = Path(directory)
    if root.is_dir():
        for path in sorted(root.glob("*/*.md")):
            try:
                st = path.stat()
            except OSError:
                continue
            h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class KnowledgeBase:
    def __init__(self, articles: list[Article], tokenizer: str | None = None, errors: list[ContentError] | None = None,
                 directory: str | None = None, fingerprint: str | None = None):
        self.articles: list[Article] = sorted(articles, key=lambda a: (a.role, a.slug, a.lang))
        self.errors = list(errors or [])
        self.directory = directory
        self.fingerprint = fingerprint
        self.tokenize = get_tokenizer(tokenizer)
        self._by_key = {a.key: a for a in self.articles}
        self._slugs = {a.slug for a in self.articles}
        # One index per language; a slug missing in a language is represented there by its other translation.
        self._docs: dict[str, list[Article]] = {}
        self._index: dict[str, BM25FIndex] = {}
        self._heads: dict[str, list[frozenset[str]]] = {}
        for lang in LANGS:
            docs = [a for a in self.articles if a.lang == lang]
            have = {a.slug for a in docs}
            for a in self.articles:  # articles are sorted, so the first other translation wins
                if a.slug not in have:
                    docs.append(a)
                    have.add(a.slug)
            self._docs[lang] = docs
            self._index[lang] = BM25FIndex([self._fields(a) for a in docs], self.tokenize)
            self._heads[lang] = [frozenset(self.tokenize(a.title + " " + " ".join(a.tags))) for a in docs]
        self._sent_cache: dict[tuple[str, str], list[tuple[str, frozenset[str]]]] = {}

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | os.PathLike = "manuals", strict: bool = True, tokenizer: str | None = None) -> "KnowledgeBase":
        """Load and index the manuals; raise the first ContentError (strict) or keep the good articles."""
        fingerprint = directory_fingerprint(directory)
        articles, errors = load_directory(directory)
        if errors and strict:
            raise errors[0]
        if strict and not articles:
            raise ContentError(directory, None, "contains no articles")
        return cls(articles, tokenizer=tokenizer, errors=errors, directory=str(directory), fingerprint=fingerprint)

    def is_stale(self) -> bool:
        return self.directory is not None and directory_fingerprint(self.directory) != self.fingerprint

    @staticmethod
    def _fields(a: Article) -> dict[str, str]:
        return {"title": a.title, "tags": " ".join(a.tags), "summary": a.summary,
                "headings": " ".join(a.headings), "body": a.body}

    # -- look-ups ------------------------------------------------------------------------------
    def get(self, slug: str, lang: str | None = None) -> Article | None:
        if lang is not None:
            return self._by_key.get((slug, lang))
        return self._by_key.get((slug, "ja")) or self._by_key.get((slug, "en"))

    def translations(self, slug: str) -> dict[str, Article]:
        return {lang: self._by_key[(slug, lang)] for lang in LANGS if (slug, lang) in self._by_key}

    def for_role(self, role: str, lang: str = "ja") -> list[Article]:
        """One article per slug of `role` in `lang` (or its other translation), ordered by title."""
        out = [a for a in self._docs.get(lang, self._docs["ja"]) if a.role == role]
        return sorted(out, key=lambda a: (normalize(a.title), a.slug))

    # -- search --------------------------------------------------------------------------------
    def _query_terms(self, text: str, noisy: bool) -> list[tuple[str, float]]:
        norm = normalize(text)
        if noisy:
            norm = strip_noise(norm)
        counts = Counter(self.tokenize(norm))
        if noisy:  # long ticket text: each symptom term counts once, repeated ones a little more
            terms = {t: 1.0 + 0.3 * math.log(c) for t, c in counts.items()}
        else:
            terms = {t: 1.0 + math.log(c) for t, c in counts.items()}
        for t in terms:
            if t.startswith(READING_PREFIX):
                terms[t] *= READING_WEIGHT
        for syn in synonym_expansions(norm):
            for t in set(self.tokenize(syn)):
                if t not in terms:
                    terms[t] = SYNONYM_WEIGHT
        return sorted(terms.items())

    def _rank(self, text: str, role: str | None, lang: str | None, k: int, noisy: bool,
              prior: dict[str, float] | None = None) -> list[Hit]:
        if k <= 0 or not text or not text.strip():
            return []
        lang = lang if lang in LANGS else detect_lang(text)
        docs = self._docs[lang]
        index = self._index[lang]
        allowed = None
        if role:
            allowed = {i for i, a in enumerate(docs) if a.role in (role, "common")}
        terms = self._query_terms(text, noisy)
        scores = index.score(terms, allowed)
        weights = {t: w * index.idf[t] for t, w in terms if t in index.idf}
        total = sum(weights.values()) or 1.0
        unseen_idf = math.log(1.0 + (index.n + 0.5) / 0.5)  # a term no article has: as rare as can be
        heads = self._heads[lang]
        ranked = []
        for i, s in scores.items():
            a = docs[i]
            if TITLE_COVER:
                s *= 1.0 + TITLE_COVER * sum(w for t, w in weights.items() if t in heads[i]) / total
            if role and a.role == role:
                s *= ROLE_BOOST
            if prior:
                s *= 1.0 + prior.get(a.slug, 0.0)
            ranked.append((-round(s, 9), 0 if (role and a.role == role) else 1, a.slug, i))
        ranked.sort()
        seen: set[str] = set()
        qset = {t for t, w in terms if w >= 1.0}
        hits: list[Hit] = []
        for neg, _, slug, i in ranked:
            if slug in seen:
                continue
            seen.add(slug)
            a = docs[i]
            typed = {t: weights.get(t, w * unseen_idf) for t, w in terms if t in qset and not t.startswith(READING_PREFIX)}
            if not typed:  # typed in kana only: judge by the reading terms
                typed = {t: weights.get(t, w * unseen_idf) for t, w in terms if t.startswith(READING_PREFIX)}
            cover = sum(w for t, w in typed.items() if t in index.doc_terms[i]) / (sum(typed.values()) or 1.0)
            hits.append(Hit(slug=a.slug, title=a.title, role=a.role, lang=a.lang, score=round(-neg, 4),
                            excerpt=self.excerpt(a, qset), coverage=round(cover, 3)))
            if len(hits) >= k:
                break
        return hits

    def search(self, query: str, role: str | None = None, lang: str | None = None, k: int = 10,
               prior: dict[str, float] | None = None) -> list[Hit]:
        """Best articles for a short query; role given = that role's and common articles only.

        `prior` (slug -> boost >= 0, e.g. from click / "resolved by" feedback) multiplies a score by 1 + boost.
        """
        return self._rank(query, role, lang, k, noisy=False, prior=prior)

    def suggest(self, ticket_text: str, role: str | None = None, k: int = 5, lang: str | None = None,
                prior: dict[str, float] | None = None) -> list[Hit]:
        """Best articles for long, noisy ticket text (greetings and politeness are ignored)."""
        return self._rank(ticket_text, role, lang, k, noisy=True, prior=prior)

    # -- excerpts ------------------------------------------------------------------------------
    def _sentences(self, a: Article) -> list[tuple[str, frozenset[str]]]:
        got = self._sent_cache.get(a.key)
        if got is None:
            got = [(s, frozenset(tokens_ngram(s))) for s in _sentences(a.body)]
            self._sent_cache[a.key] = got
        return got

    def excerpt(self, a: Article, query_terms: set[str] | None = None, length: int = EXCERPT_LEN) -> str:
        """The sentence of the body sharing most terms with the query (else the summary)."""
        best, best_n = "", 0
        if query_terms:
            q = {t for t in query_terms if not t.startswith("~")}
            for s, toks in self._sentences(a):
                n = len(q & toks)
                if n > best_n:
                    best, best_n = s, n
        if not best:
            sents = self._sentences(a)
            best = a.summary or (sents[0][0] if sents else "")
        return best if len(best) <= length else best[: length - 1] + "…"
