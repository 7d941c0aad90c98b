"""Recurring-issue detection: group tickets that describe the same problem.

`cluster_texts(items)` takes (key, text) pairs and returns the groups of 3+ tickets, largest
first; tickets that fit no group are left out. Pipeline (chosen by `bench/recurring_quality.py`,
which measures the alternatives on a labelled set and checks a held-out set):

1. `textprep.prepare`: boilerplate and personal data removed, MeCab (fugashi + unidic-lite)
   dictionary forms of content words, negation kept, a small domain thesaurus applied.
2. TF-IDF over word unigrams + bigrams (a word must occur in 2+ tickets), sublinear tf,
   L2-normalised, concatenated with a lighter character 2–3-gram TF-IDF of the cleaned text
   (it catches typos and words the tokenizer splits differently).
3. LSA: truncated SVD to k = round(sqrt(n)) dimensions (derived from the data size, capped);
   tickets about a recurring problem share vocabulary with many others, so most of their
   TF-IDF vector lies in that subspace, while a one-off ticket's words are its own: a ticket
   whose captured share ("energy", the norm of its projection) is below `MIN_ENERGY` is left
   out before clustering. This is what keeps one-off tickets from being pulled into groups.
4. Agglomerative clustering (scikit-learn), average linkage, cosine distance on the normalised
   LSA vectors, cut at the constant `DISTANCE_THRESHOLD`.
5. Groups smaller than `MIN_GROUP_SIZE` are dropped (not recurring).

All constants were fixed on the labelled set (`bench/recurring_quality.py --sweep`) and are
never tuned per data set at run time.

Large inputs: the full clustering runs on the most recent `MAX_FULL` tickets; older ones are
then assigned to the nearest group centroid when their similarity to it is at least as high as
the loosest member's (`assign_to_groups`, also used by the incremental job for new tickets).
Pure Python + scikit-learn, no Flask.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

import numpy as np
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from helpdesk.insights.textprep import JOINED_WORDS, strip_boilerplate, tokens

MIN_GROUP_SIZE = 3
DISTANCE_THRESHOLD = 0.50
MIN_ENERGY = 0.40
LSA_PER_SQRT_N = 1.0
LSA_MAX_DIMS = 150
CHAR_WEIGHT = 0.5
MAX_FULL = 6000
LINKAGE = "average"


@dataclass
class Group:
    """One recurring issue: its tickets' keys, the words that characterise it, a label, an example."""

    keys: list = field(default_factory=list)
    top_terms: list[str] = field(default_factory=list)
    label: str = ""
    representative: Hashable | None = None
    #: Mean vector of the members in the model's space (for assigning new tickets); not serialised.
    centroid: Any = None
    #: Lowest cosine similarity of a member to the centroid: the group's own admission bar.
    min_similarity: float = 0.0

    def as_dict(self) -> dict:
        return {"keys": list(self.keys), "top_terms": list(self.top_terms), "label": self.label,
                "representative": self.representative, "size": len(self.keys)}


def _split(text: str) -> list[str]:
    return text.split()


def _split_text(text: str) -> tuple[str, str]:
    subject, _, body = text.partition("\n")
    return subject, body


class Model:
    """The fitted vectorisers: turn prepared texts into comparable vectors."""

    def __init__(self, char_weight: float = CHAR_WEIGHT, min_energy: float = MIN_ENERGY):
        self.char_weight = char_weight
        self.min_energy = min_energy
        self.svd: TruncatedSVD | None = None
        #: Sentences found to be boilerplate in the collection (`find_boilerplate`), stripped before vectorising.
        self.boilerplate: set[str] = set()
        self.words = TfidfVectorizer(analyzer=_split, ngram_range=(1, 1), min_df=2, sublinear_tf=True,
                                     dtype=np.float32)
        self.bigrams = TfidfVectorizer(analyzer=_bigrams, min_df=2, sublinear_tf=True, dtype=np.float32)
        self.chars = TfidfVectorizer(analyzer="char", ngram_range=(2, 3), min_df=2, sublinear_tf=True,
                                     dtype=np.float32)

    def fit_transform(self, token_texts: list[str], clean_texts: list[str]):
        words = sparse.hstack([self.words.fit_transform(token_texts), 0.7 * self.bigrams.fit_transform(token_texts)])
        return self._combine(words, self.chars.fit_transform(clean_texts) if self.char_weight else None)

    def transform(self, token_texts: list[str], clean_texts: list[str]):
        token_texts, clean_texts = strip_sentences(token_texts, clean_texts, getattr(self, "boilerplate", set()))
        words = sparse.hstack([self.words.transform(token_texts), 0.7 * self.bigrams.transform(token_texts)])
        return self._combine(words, self.chars.transform(clean_texts) if self.char_weight else None)

    def _combine(self, words, chars):
        words = normalize(sparse.csr_matrix(words))
        if chars is None:
            return words
        return normalize(sparse.hstack([words, self.char_weight * chars]).tocsr())

    def fit_lsa(self, tfidf, k: int) -> None:
        self.svd = TruncatedSVD(n_components=k, random_state=0, algorithm="randomized", n_iter=7)
        self.svd.fit(tfidf)

    def project(self, tfidf) -> tuple[np.ndarray, np.ndarray]:
        """Return (unit LSA vectors, energy = share of each TF-IDF vector kept by the LSA subspace)."""
        z = self.svd.transform(tfidf).astype(np.float32)
        energy = np.linalg.norm(z, axis=1)
        safe = np.where(energy > 0, energy, 1.0)[:, None]
        return z / safe, energy

    def terms(self) -> np.ndarray:
        return self.words.get_feature_names_out()


def _bigrams(text: str) -> list[str]:
    toks = text.split()
    return [f"{a} {b}" for a, b in zip(toks, toks[1:])]


def _prepare_one(text: str) -> tuple[str, str]:
    cleaned = strip_boilerplate(text or "")
    return " ".join(tokens(cleaned)), cleaned.replace("\n", " ")


PARALLEL_FROM = 5000


def prepare_items(items: Sequence[tuple[Hashable, str]]) -> tuple[list[str], list[str]]:
    """Return (token texts, cleaned texts) for (key, "subject\\nbody") items.

    Large batches are spread over the CPU cores (MeCab runs in each worker process).
    """
    texts = [text for _, text in items]
    if len(texts) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with ctx.Pool(os.cpu_count()) as pool:
            pairs = pool.map(_prepare_one, texts, chunksize=500)
    else:
        pairs = [_prepare_one(text) for text in texts]
    return [p[0] for p in pairs], [p[1] for p in pairs]


#: Sentences, and the parts of a line a template puts around the text (a "件名:" label, a "(…)" remark).
_SENTENCE = re.compile(r"[^。!?！？\n:：()（）]+[。!?！？]?")
#: A sentence found in at least this many tickets is checked for being boilerplate.
BOILERPLATE_MIN_TICKETS = 4
#: ... and is boilerplate when the rest of those tickets have this little in common (mean Jaccard of words).
BOILERPLATE_MAX_OVERLAP = 0.15


def _sentences(text: str) -> list[str]:
    return [m.group(0).strip() for m in _SENTENCE.finditer(text or "") if len(m.group(0).strip()) >= 5]


def find_boilerplate(clean_texts: list[str], sample: int = 40) -> set[str]:
    """Sentences that many tickets share while the rest of those tickets have nothing in common.

    Templates of a mail client, a chat hand-off or a phone memo ("件名: お問い合わせ", "先週までは問題
    ありませんでした") are written around every kind of problem: the tickets holding one share that
    sentence and little else. A sentence of a recurring problem is the opposite: the tickets holding it
    are otherwise short (what remains are other wrappers) or about the same thing. Only the first kind
    is returned, so the vectors compare what the tickets are about rather than how they were sent.
    """
    found: set[str] = set()
    for _round in range(3):  # one template often holds another: strip what was found and look again
        texts = clean_texts
        if found:
            texts = []
            for text in clean_texts:
                for sentence in found:
                    text = text.replace(sentence, " ")
                texts.append(text)
        more = _find_boilerplate_once(texts, sample) - found
        if not more:
            break
        found |= more
    return found


def _find_boilerplate_once(clean_texts: list[str], sample: int) -> set[str]:
    where: dict[str, list[int]] = {}
    for i, text in enumerate(clean_texts):
        for sentence in set(_sentences(text)):
            where.setdefault(sentence, []).append(i)
    found = set()
    for sentence, holders in where.items():
        if len(holders) < BOILERPLATE_MIN_TICKETS:
            continue
        own = set(tokens(sentence))
        rests = []
        for i in holders[:sample]:
            rest = set(tokens(clean_texts[i].replace(sentence, " "))) - own
            if len(rest) >= 3:
                rests.append(rest)
        if len(rests) < max(BOILERPLATE_MIN_TICKETS, 0.6 * min(len(holders), sample)):
            continue  # the others are mostly wrappers: this sentence is what they are about
        pairs = [(a, b) for n, a in enumerate(rests) for b in rests[n + 1:]]
        overlap = sum(len(a & b) / len(a | b) for a, b in pairs) / len(pairs)
        if overlap < BOILERPLATE_MAX_OVERLAP:
            found.add(sentence)
    return found


def strip_sentences(token_texts: list[str], clean_texts: list[str], boilerplate: set[str]) -> tuple[list[str], list[str]]:
    """Remove the given sentences from prepared texts (re-tokenising only the texts that held one)."""
    if not boilerplate:
        return token_texts, clean_texts
    out_tokens, out_clean = list(token_texts), list(clean_texts)
    for i, text in enumerate(clean_texts):
        hits = [s for s in _sentences(text) if s in boilerplate]
        if hits:
            for sentence in hits:
                text = text.replace(sentence, " ")
            out_clean[i] = text
            out_tokens[i] = " ".join(tokens(text))
    return out_tokens, out_clean


def lsa_dims(n_docs: int, n_features: int) -> int:
    """Number of LSA dimensions for a collection: about sqrt(n), within what the matrix allows."""
    k = int(round(LSA_PER_SQRT_N * np.sqrt(max(n_docs, 1))))
    return max(1, min(k, LSA_MAX_DIMS, n_docs - 1, n_features - 1))


def _labels(matrix, *, threshold: float, linkage: str) -> np.ndarray:
    n = matrix.shape[0]
    if n < 2:
        return np.full(n, -1)
    dense = matrix.toarray() if sparse.issparse(matrix) else matrix
    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage=linkage,
                                    distance_threshold=threshold)
    return model.fit_predict(dense)


_SENTENCE_SPLIT = re.compile(r"[。!?！？\n…]+|\.{3,}|(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])")
_PHRASE_TRIM = re.compile(r"(?:(?:を|が)?(?:教えて|お知らせ)?(?:ください|下さい|ほしい|欲しい|頂けますか|いただけますか|"
                          r"でしょうか|ますか|ですか|のですが|んですが|ですが|けど|が)|について|の件|か|。|、|\s)+$")
_ACRONYMS = re.compile(r"(?<![a-z])(csv|id|pdf|url|sms|lgwan|otp|api|pc|cpu|ipad|edge|chrome|safari)(?![a-z])")
_GREETING = re.compile(r"(?:こんにちは|こんばんは|お世話になっております|お疲れ様です|すみません|恐れ入ります)[、。!！\s]*")
LABEL_MAX = 36


def _readable(fragment: str) -> str:
    """Tidy a sentence fragment into a label: no request endings, acronyms in capitals, at most LABEL_MAX chars."""
    text = re.sub(r"^(?:\s*[【\[［][^】\]］]{0,12}[】\]］])+", "", fragment)
    text = _GREETING.sub("", text).strip(" 「」『』\"'・-")
    text = re.sub(r"^(?:[^、]{0,12}(?:ですが|ところ|のですが))、", "", text)
    text = _PHRASE_TRIM.sub("", text).strip()
    if len(text) > LABEL_MAX:
        cut = max(text.rfind("、", 0, LABEL_MAX), text.rfind("，", 0, LABEL_MAX))
        text = text[:cut] if cut >= 8 else text[:LABEL_MAX - 1] + "…"
    text = text.strip("「」『』 ")
    text = re.sub(r"「([^」]*)$", r"\1", text)
    text = re.sub(r"[(（]([^)）]*)$", r"\1", text)
    if text.endswith((")", "）")) and not re.search(r"[(（]", text):
        text = text[:-1]
    if text.startswith(("(", "（")) and not re.search(r"[)）]", text):
        text = text[1:]
    return _ACRONYMS.sub(lambda m: m.group(1).upper() if m.group(1) not in ("ipad", "edge", "chrome", "safari")
                         else {"ipad": "iPad", "edge": "Edge", "chrome": "Chrome", "safari": "Safari"}[m.group(1)],
                         text)


def phrase_label(texts: list[str], term_weight: dict[str, float]) -> str:
    """A phrase a person would write for a group: the sentence fragment of its most central tickets that
    carries most of the group's characteristic words, in the tickets' own words (contiguous text, never a
    bag of tokens).

    `texts` are cleaned ticket texts ("subject body", boilerplate and personal data already removed),
    most central first; `term_weight` maps the group's top terms to their weight.
    """
    best, best_score = "", 0.0
    seen: set[str] = set()
    for rank, text in enumerate(texts):
        fragments = [f for f in _SENTENCE_SPLIT.split(text or "") if f.strip()]
        for position, fragment in enumerate(fragments):
            if any(len(other) > len(fragment) and fragment.strip() in other for other in fragments):
                continue  # a subject cut short that the body repeats in full
            phrase = _readable(fragment)
            if len(phrase) < 4 or phrase in seen:
                continue
            seen.add(phrase)
            words = set(tokens(phrase))
            covered = sum(w for t, w in term_weight.items() if t in words)
            if not covered:
                continue
            # Shorter phrases and the first sentence (usually the subject) of more central tickets read best.
            score = covered / (1.0 + max(0, len(phrase) - 20) / 20) * (1.0 if position == 0 else 0.9) \
                * (1.0 - 0.03 * rank)
            if score > best_score:
                best, best_score = phrase, score
    return best


def _describe(model: Model, word_matrix, members: np.ndarray, all_vectors, keys: list,
              clean_texts: list[str] | None = None) -> Group:
    sub = word_matrix[members]
    weights = np.asarray(sub.mean(axis=0)).ravel()
    # Rank words by mean TF-IDF weight times the share of members using them.
    share = np.asarray((sub > 0).mean(axis=0)).ravel()
    score = weights * share
    terms = model.terms()
    order = [i for i in np.argsort(-score) if score[i] > 0][:8]
    top = _join_split_words([_display(terms[i]) for i in order])
    vecs = all_vectors[members]
    centroid = np.asarray(vecs.mean(axis=0)).ravel()
    norm = np.linalg.norm(centroid) or 1.0
    centroid = centroid / norm
    sims = np.asarray(vecs @ centroid).ravel()
    representative = keys[members[int(np.argmax(sims))]]
    label = ""
    if clean_texts is not None and top:
        central = [clean_texts[members[i]] for i in np.argsort(-sims)[:8]]
        label = phrase_label(central, {terms[i]: float(score[i]) for i in order})
    label = label or ("・".join(top[:3]) if top else str(representative))
    return Group(keys=[keys[i] for i in members], top_terms=top, label=label, representative=representative,
                 centroid=centroid.astype(np.float32), min_similarity=float(sims.min()))


def _join_split_words(top: list[str]) -> list[str]:
    for (a, b), joined in JOINED_WORDS.items():
        if a in top and b in top:
            top = [joined if t == a else t for t in top if t != b]
    return list(dict.fromkeys(top))


def _display(term: str) -> str:
    return re.sub(r"-[A-Za-z]+（[^）]*）$", "", term).replace("_ない", "（ない）")


#: A member must use at least MIN_SHARED_WORDS words that CORE_SHARE of the other members use too.
CORE_SHARE = 0.4
MIN_SHARED_WORDS = 2


def _anchored(members: np.ndarray, word_matrix, min_shared: int = MIN_SHARED_WORDS) -> np.ndarray:
    """Drop members tied to their group by a single shared word ("メールの署名を変更したい" among mail delivery
    failures): one common word is a topic, not the same problem."""
    if len(members) < 2 or min_shared <= 0:
        return members
    used = (word_matrix[members] > 0).astype(np.float32).toarray()
    others = (used.sum(axis=0)[None, :] - used) / (len(members) - 1)
    shared = ((used > 0) & (others >= CORE_SHARE)).sum(axis=1)
    return members[shared >= min_shared]


def cluster_prepared(keys: list, token_texts: list[str], clean_texts: list[str], *,
                     threshold: float = DISTANCE_THRESHOLD, linkage: str = LINKAGE,
                     char_weight: float = CHAR_WEIGHT, min_energy: float = MIN_ENERGY,
                     min_size: int = MIN_GROUP_SIZE,
                     max_full: int = MAX_FULL, order: Sequence[int] | None = None,
                     strip_boilerplate_sentences: bool = False,
                     min_shared_words: int | None = None) -> tuple[list[Group], Model]:
    """Cluster already prepared texts; `order` lists indexes newest first (for the MAX_FULL cut)."""
    n = len(keys)
    model = Model(char_weight, min_energy)
    if n == 0:
        return [], model
    full_idx = np.arange(n) if n <= max_full else np.asarray(list(order or range(n))[:max_full])
    if len(full_idx) < min_size:
        return [], model
    if strip_boilerplate_sentences:
        model.boilerplate = find_boilerplate([clean_texts[i] for i in full_idx])
        token_texts, clean_texts = strip_sentences(token_texts, clean_texts, model.boilerplate)
    try:
        tfidf = model.fit_transform([token_texts[i] for i in full_idx], [clean_texts[i] for i in full_idx])
    except ValueError:  # empty vocabulary: nothing in common at all
        return [], model
    k = lsa_dims(tfidf.shape[0], tfidf.shape[1])
    if k < 2:
        return [], model
    model.fit_lsa(tfidf, k)
    reduced, energy = model.project(tfidf)
    word_full = model.words.transform([token_texts[i] for i in full_idx])
    labels = np.full(len(full_idx), -1)
    ok = np.flatnonzero((energy >= model.min_energy) & (energy > 1e-6))
    if len(ok) >= min_size:
        labels[ok] = _labels(reduced[ok], threshold=threshold, linkage=linkage)
    vectors_full = reduced
    full_keys = [keys[i] for i in full_idx]
    groups = []
    for label, count in Counter(labels.tolist()).items():
        if label < 0 or count < min_size:
            continue
        members = _anchored(np.flatnonzero(labels == label), word_full,
                            MIN_SHARED_WORDS if min_shared_words is None else min_shared_words)
        if len(members) < min_size:
            continue
        groups.append(_describe(model, word_full, members, vectors_full, full_keys,
                                [clean_texts[i] for i in full_idx]))
    if n > max_full and groups:
        rest = np.setdiff1d(np.arange(n), full_idx)
        vectors_rest, energy_rest = _project_many(model, [token_texts[i] for i in rest],
                                                  [clean_texts[i] for i in rest])
        for group_index, pos in assign_vectors(groups, vectors_rest):
            if group_index is not None and energy_rest[pos] >= model.min_energy:
                groups[group_index].keys.append(keys[rest[pos]])
    groups.sort(key=lambda g: (-len(g.keys), str(g.label)))
    return groups, model


_POOL_STATE: tuple | None = None


def _project_chunk(bounds: tuple[int, int]):
    model, tokens, cleaned = _POOL_STATE
    a, b = bounds
    return model.project(model.transform(tokens[a:b], cleaned[a:b]))


def _project_many(model: Model, tokens: list[str], cleaned: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Vectorise and project many texts, split over the CPU cores for large batches."""
    global _POOL_STATE
    cores = os.cpu_count() or 1
    if len(tokens) < PARALLEL_FROM or cores < 2:
        return model.project(model.transform(tokens, cleaned))
    import multiprocessing as mp

    step = -(-len(tokens) // cores)
    bounds = [(a, min(a + step, len(tokens))) for a in range(0, len(tokens), step)]
    _POOL_STATE = (model, tokens, cleaned)  # inherited by the forked workers, not pickled
    try:
        ctx = mp.get_context("fork")
        with ctx.Pool(cores) as pool:
            parts = pool.map(_project_chunk, bounds)
    finally:
        _POOL_STATE = None
    return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def assign_vectors(groups: list[Group], vectors) -> list[tuple[int | None, int]]:
    """For each row of `vectors`, the index of the group it joins (nearest centroid, above its bar)."""
    if not groups or vectors.shape[0] == 0:
        return [(None, i) for i in range(vectors.shape[0])]
    centroids = np.vstack([g.centroid for g in groups])
    bars = np.array([g.min_similarity for g in groups], dtype=np.float32)
    out = []
    step = 5000
    for start in range(0, vectors.shape[0], step):
        sims = np.asarray(vectors[start:start + step] @ centroids.T)
        best = sims.argmax(axis=1)
        for row, g in enumerate(best):
            ok = sims[row, g] >= bars[g] and sims[row, g] > 0
            out.append((int(g) if ok else None, start + row))
    return out


def cluster_texts(items: list[tuple[Hashable, str]], *, now: dt.datetime | None = None,
                  **options) -> list[Group]:
    """Group (key, text) items describing the same problem; groups of 3+ only, largest first.

    `text` is "subject\\nbody". Items are taken as given in time order, oldest first, when more
    than MAX_FULL are passed (the newest MAX_FULL are clustered, the rest assigned). `now` is
    accepted for callers that window by time; the method itself does not depend on it.
    """
    keys = [key for key, _ in items]
    token_texts, clean_texts = prepare_items(items)
    order = list(range(len(items)))[::-1]
    groups, _ = cluster_prepared(keys, token_texts, clean_texts, order=order, **options)
    return groups
