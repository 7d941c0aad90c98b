"""Full-text search over tickets (subject, body, replies) for Japanese and English text.

Japanese has no spaces between words, so a query is not split into words but into *terms*:
runs of one script (katakana, kanji, Latin letters/digits, hiragana). Katakana, kanji and Latin runs
carry the content ("ログイン", "接種記録", "edge"); hiragana runs are mostly inflection and particles
("できない", "が"), so they count less and also match by their first two characters ("でき" matches
"できません"). Long kanji runs are also cut into overlapping bigrams, because compounds are written
with or without particles in between ("接種記録入力" ≈ "接種記録の入力").

A ticket is a candidate when it contains any content term — for a long kanji run, the run itself or
at least two of its bigrams (so 「納品予定日」 finds 「納品の予定日」 but not every ticket that says
「予定」); its score is the weighted number of terms it contains plus a bonus for the whole query as a
phrase. Both databases evaluate the same
SQL (`LIKE '%term%'` over the NFKC-normalised, lower-cased `search_text`), accelerated by:

- PostgreSQL: a pg_trgm GIN index on `search_text` (the database must have a UTF-8 LC_CTYPE such
  as C.UTF-8, otherwise pg_trgm extracts no trigrams from Japanese);
- SQLite: an FTS5 table with the `trigram` tokenizer for terms of 3+ characters. Shorter terms
  (e.g. 「印刷」) fall back to LIKE on the plain `search_text` column, because FTS5 trigram cannot
  match them and SQLite 3.40 wrongly answers nothing for LIKE '%印刷%' on the FTS5 column itself.

Ranking is computed over the most recent CANDIDATE_LIMIT candidates, which bounds the cost of a
query on a term found in 100,000 tickets (see README "Search").
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import Text, and_, case, cast, func, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.sql import ColumnElement

from helpdesk.text import normalize

#: Ranking looks at this many most recent candidates at most.
CANDIDATE_LIMIT = 1000
MAX_TERMS = 12

#: The distinct two-character substrings of a text (none containing white space). pg_trgm cannot serve
#: 1–2 character terms, and two-kanji words are everyday Japanese (印刷, 廃棄, 納品, 接種); this GIN index
#: answers them like pg_bigm would: a two-character term occurs in a text exactly when it is one of the
#: text's bigrams. COST tells the planner that evaluating it row by row is dear (~0.2 ms), so it uses
#: the index instead of filtering a walk with it.
BIGRAM_FUNCTION_DDL = (
    "CREATE OR REPLACE FUNCTION hd_bigrams(t text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 5000 AS "
    "$$ SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (SELECT substr(t, i, 2) AS g "
    "FROM generate_series(1, length(t) - 1) AS i) s WHERE g !~ '\\s' $$")
BIGRAM_INDEX_DDL = ("CREATE INDEX IF NOT EXISTS ix_tickets_search_bigram ON tickets "
                    "USING gin (hd_bigrams(search_text))")

POSTGRES_DDL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_tickets_search_trgm ON tickets USING gin (search_text gin_trgm_ops)",
    BIGRAM_FUNCTION_DDL,
    BIGRAM_INDEX_DDL,
    # Unassigned tickets are nearly all 'new': without joint statistics the planner multiplies the two
    # selectivities, expects a few hundred rows and sorts 23,000 of them (130 ms at 1M tickets).
    "CREATE STATISTICS IF NOT EXISTS st_tickets_assignee_status (mcv, dependencies) ON assignee_id, status "
    "FROM tickets",
]

SQLITE_DDL = [
    """
    CREATE VIRTUAL TABLE IF NOT EXISTS tickets_fts USING fts5(
        search_text, content='tickets', content_rowid='id', tokenize='trigram');
    CREATE TRIGGER IF NOT EXISTS tickets_fts_ai AFTER INSERT ON tickets BEGIN
        INSERT INTO tickets_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END;
    CREATE TRIGGER IF NOT EXISTS tickets_fts_ad AFTER DELETE ON tickets BEGIN
        INSERT INTO tickets_fts(tickets_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
    END;
    CREATE TRIGGER IF NOT EXISTS tickets_fts_au AFTER UPDATE OF search_text ON tickets BEGIN
        INSERT INTO tickets_fts(tickets_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
        INSERT INTO tickets_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END;
    """,
]

STOP_WORDS = frozenset("a an the of to in on at is are be and or for with my i we it not can cannot".split())
WEIGHT_STRONG, WEIGHT_WEAK, WEIGHT_PHRASE = 2, 1, 3


#: A long kanji run's bigrams make a ticket a candidate in pairs; at most this many bigrams per run.
MAX_PART_BIGRAMS = 6


@dataclass
class Term:
    text: str
    #: Content term (selects candidates) or a weak one (only adds to the score).
    strong: bool
    weight: int = field(default=0)
    #: For a bigram cut from a long kanji run: that run (such parts select candidates only in pairs).
    part_of: str | None = None

    def __post_init__(self):
        if not self.weight:
            self.weight = WEIGHT_STRONG if self.strong else WEIGHT_WEAK


@dataclass
class SearchQuery:
    raw: str
    phrase: str
    terms: list[Term]

    @property
    def candidate_terms(self) -> list[str]:
        """Terms any one of which makes a ticket a candidate."""
        strong = [t.text for t in self.terms if t.strong and not t.part_of]
        return strong or [t.text for t in self.terms if not t.part_of] or [t.text for t in self.terms]

    @property
    def candidate_pairs(self) -> list[tuple[str, str]]:
        """Pairs of bigrams of one long kanji run, both of which make a ticket a candidate."""
        runs: dict[str, list[str]] = {}
        for t in self.terms:
            if t.part_of and t.strong:
                runs.setdefault(t.part_of, []).append(t.text)
        pairs = []
        for parts in runs.values():
            parts = parts[:MAX_PART_BIGRAMS]
            pairs += [(a, b) for i, a in enumerate(parts) for b in parts[i + 1:]]
        return pairs

    def is_candidate(self, text: str) -> bool:
        """The candidate rule of `candidate_clause`, in Python (portal re-check, tests)."""
        return (any(term in text for term in self.candidate_terms)
                or any(a in text and b in text for a, b in self.candidate_pairs))

    def __bool__(self) -> bool:
        return bool(self.terms)


def _script(ch: str) -> str:
    code = ord(ch)
    if 0x30A0 <= code <= 0x30FF or ch == "ー":
        return "katakana"
    if 0x3040 <= code <= 0x309F:
        return "hiragana"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or ch in "々〆ヶ":
        return "kanji"
    if ch.isalnum() or ch in "_":
        return "latin"
    cat = unicodedata.category(ch)
    if cat.startswith("L") or cat.startswith("N"):
        return "other"
    return "sep"


def _runs(chunk: str) -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    for ch in chunk:
        script = _script(ch)
        if runs and runs[-1][0] == script and script != "sep":
            runs[-1] = (script, runs[-1][1] + ch)
        else:
            runs.append((script, ch))
    return [(s, t) for s, t in runs if s != "sep"]


def parse_query(raw: str | None) -> SearchQuery:
    """Turn what the user typed into weighted terms (NFKC, lower case, script runs)."""
    phrase = normalize(raw)[:200]
    seen: dict[str, Term] = {}

    def add(text_: str, strong: bool, weight: int = 0, part_of: str | None = None) -> None:
        if not text_ or text_ in seen:
            if text_ in seen and strong and not seen[text_].strong:
                seen[text_] = Term(text_, True, weight, part_of)
            elif text_ in seen and seen[text_].part_of and not part_of:
                seen[text_].part_of = None  # also typed as a word of its own: a candidate term by itself
            return
        seen[text_] = Term(text_, strong, weight, part_of)

    for chunk in phrase.split():
        for script, run in _runs(chunk):
            if script == "latin":
                if len(run) >= 2 and run not in STOP_WORDS:
                    add(run, True)
            elif script in ("katakana", "other"):
                add(run, len(run) >= 2 or len(chunk) == 1)
            elif script == "kanji":
                add(run, True)
                if len(run) >= 4:  # compounds may appear split by particles in the text
                    for i in range(len(run) - 1):
                        add(run[i:i + 2], True, WEIGHT_WEAK, part_of=run)
            else:  # hiragana: inflections and particles
                if len(run) >= 2:
                    add(run, False)
                    if len(run) >= 3:
                        add(run[:2], False)
    terms = list(seen.values())
    if not any(t.strong for t in terms):
        # A hiragana-only query ("できない") still has to find something.
        terms = [Term(t.text, True) for t in terms if len(t.text) >= 2] or \
                ([Term(phrase, True)] if phrase else [])
    return SearchQuery(raw=raw or "", phrase=phrase, terms=terms[:MAX_TERMS])


def _like(column, term: str) -> ColumnElement:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


def score_expression(column, query: SearchQuery) -> ColumnElement:
    """Weighted count of the terms a ticket contains, plus a bonus for the whole phrase."""
    parts = [case((_like(column, t.text), t.weight), else_=0) for t in query.terms]
    if query.phrase and len(query.terms) > 1:
        parts.append(case((_like(column, query.phrase), WEIGHT_PHRASE), else_=0))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _fts5_quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _has_fts(session) -> bool:
    """Whether the FTS5 table exists (SQLITE_DDL installed); cached per engine."""
    if session is None:
        return False
    key = id(session.get_bind().engine)
    cached = _FTS_PRESENT.get(key)
    if cached is None:
        cached = session.execute(text(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tickets_fts'")).first() is not None
        if cached:  # a table added later by a migration is picked up
            _FTS_PRESENT[key] = cached
    return cached


_FTS_PRESENT: dict[int, bool] = {}


def candidate_clause(column, id_column, query: SearchQuery, dialect: str, session=None, *,
                     via_index: bool = False) -> ColumnElement:
    """The WHERE clause for tickets containing any content term (index-assisted on both databases)."""
    terms, pairs = query.candidate_terms, query.candidate_pairs
    if dialect == "sqlite" and _has_fts(session):
        long_terms = [t for t in terms if len(t) >= 3]
        short_terms = [t for t in terms if len(t) < 3]
        clauses = []
        if long_terms:
            match = " OR ".join(_fts5_quote(t) for t in long_terms)
            clauses.append(id_column.in_(
                select(literal_column("rowid")).select_from(text("tickets_fts"))
                .where(text("tickets_fts MATCH :fts_match").bindparams(fts_match=match))))
        # 1–2 character terms: FTS5 trigram cannot match them; scan the plain column instead.
        clauses += [_like(column, t) for t in short_terms]
        clauses += [and_(_like(column, a), _like(column, b)) for a, b in pairs]
        return or_(*clauses)
    if via_index and dialect == "postgresql" and has_bigram_index(session):
        # Only when the rows are collected through the indexes: evaluated row by row (a walk newest
        # first), hd_bigrams() costs ~0.2 ms a ticket where LIKE costs microseconds.
        return or_(*[_like(column, t) if len(t) != 2 else _bigram(column, t) for t in terms],
                   *[_bigram(column, a, b) for a, b in pairs])
    return or_(*[_like(column, t) for t in terms], *[and_(_like(column, a), _like(column, b)) for a, b in pairs])


def _bigram(column, *terms: str) -> ColumnElement:
    """Every one of `terms` (two characters each) is a bigram of the text: served by ix_tickets_search_bigram."""
    if any(ch.isspace() for term in terms for ch in term):
        return and_(*[_like(column, t) for t in terms])
    return func.hd_bigrams(column, type_=ARRAY(Text)).contains(cast(array(list(terms)), ARRAY(Text)))


def has_bigram_index(session) -> bool:
    """Whether PostgreSQL has the bigram index (POSTGRES_DDL / migration f6bigram0006); cached per engine."""
    if session is None:
        return False
    key = id(session.get_bind().engine)
    cached = _BIGRAM_PRESENT.get(key)
    if cached is None:
        cached = session.execute(text(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'ix_tickets_search_bigram'")).first() is not None
        if cached:  # an index added later by a migration is picked up
            _BIGRAM_PRESENT[key] = cached
    return cached


_BIGRAM_PRESENT: dict[int, bool] = {}


def shortest_indexed_term(session, dialect: str) -> int:
    """Terms at least this long can be found through an index on this database (else: a scan)."""
    if dialect == "postgresql":
        return 2 if has_bigram_index(session) else 3
    return 3


def estimate_rows(session, stmt) -> float:
    """The PostgreSQL planner's row estimate for `stmt` (pg_trgm gives useful LIKE estimates)."""
    # render_postcompile: expanding IN parameters (status IN (…)) become plain bound parameters; without
    # it the text would carry "(__[POSTCOMPILE_status_1])", which only the ORM's execute() expands.
    compiled = stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    plan = session.connection().exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled),
                                                compiled.params).scalar()
    if isinstance(plan, str):
        import json

        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def score_in_python(search_text: str, query: SearchQuery) -> int:
    """The same score as score_expression, for tests and for ranking small lists in memory."""
    score = sum(t.weight for t in query.terms if t.text in search_text)
    if query.phrase and len(query.terms) > 1 and query.phrase in search_text:
        score += WEIGHT_PHRASE
    return score
