"""Loading and validating the manual files (`manuals/<role>/<slug>.<lang>.md`)."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROLES = ("municipality", "clinic", "wholesaler", "common")
LANGS = ("ja", "en")
CATEGORIES = (
    "login", "password", "browser", "allocation", "delivery", "vaccination_records",
    "disposal", "data_correction", "system_error", "other",
)
REQUIRED = ("slug", "role", "title", "lang", "tags", "version", "updated")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
FILE_RE = re.compile(r"^(?P<slug>[^.]+)\.(?P<lang>[^.]+)\.md$")
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when available: ~10x faster
    """Safe YAML where dates stay strings, so a bad date is our clear error, not a YAML crash."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


class ContentError(Exception):
    """A problem in one manual file: which file, which field, what is wrong."""

    def __init__(self, path: str | Path, field: str | None, message: str):
        self.path = str(path)
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else self.path
        return f"{where}: {self.message}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContentError) and (self.path, self.field, self.message) == (
            other.path, other.field, other.message)

    def __hash__(self) -> int:
        return hash((self.path, self.field, self.message))


@dataclass(frozen=True)
class Article:
    slug: str
    role: str
    lang: str
    title: str
    tags: tuple[str, ...]
    version: int
    updated: dt.date
    summary: str
    category: str | None
    related: tuple[str, ...]
    body: str
    path: str
    headings: tuple[str, ...] = field(default=())
    checksum: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.slug, self.lang)


def split_front_matter(text: str) -> tuple[str, str] | None:
    """Return (yaml, body) when the text starts with a `---` fenced front matter block."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1:])
    return None


def extract_headings(body: str) -> tuple[str, ...]:
    """Markdown ATX headings (outside code fences), in order."""
    out: list[str] = []
    in_fence = False
    for line in body.splitlines():
        if _FENCE_RE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        m = _HEADING_RE.match(line)
        if m:
            out.append(m.group(2).strip())
    return tuple(out)


def _string_list(value, path, name, errors) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        errors.append(ContentError(path, name, "must be a list of non-empty strings"))
        return None
    return tuple(v.strip() for v in value)


def parse_article(path: str | Path, role_dir: str | None = None) -> tuple[Article | None, list[ContentError]]:
    """Parse one file; returns the article (None when unusable) and every problem found in it."""
    path = Path(path)
    errors: list[ContentError] = []
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [ContentError(path, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})")]
    except OSError as exc:
        return None, [ContentError(path, None, f"cannot be read ({exc.strerror})")]
    parts = split_front_matter(text)
    if parts is None:
        return None, [ContentError(path, "front matter", "missing: the file must start with a '---' YAML block closed by '---'")]
    head, body = parts
    try:
        meta = yaml.load(head, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        return None, [ContentError(path, "front matter", f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}")]
    if not isinstance(meta, dict):
        return None, [ContentError(path, "front matter", "must be a YAML mapping of field: value")]

    for name in REQUIRED:
        if name not in meta or meta[name] is None or meta[name] == "":
            errors.append(ContentError(path, name, "is required but missing"))

    m = FILE_RE.match(path.name)
    file_slug, file_lang = (m.group("slug"), m.group("lang")) if m else (None, None)
    if m is None:
        errors.append(ContentError(path, "file name", "must be <slug>.<lang>.md"))

    slug = meta.get("slug")
    if slug is not None:
        if not isinstance(slug, str) or not SLUG_RE.match(slug):
            errors.append(ContentError(path, "slug", f"{slug!r} must be lower-case letters, digits and hyphens"))
        elif file_slug is not None and slug != file_slug:
            errors.append(ContentError(path, "slug", f"{slug!r} does not match the file name {file_slug!r}"))

    role = meta.get("role")
    if role is not None:
        if role not in ROLES:
            errors.append(ContentError(path, "role", f"{role!r} is not one of {', '.join(ROLES)}"))
        elif role_dir is not None and role != role_dir:
            errors.append(ContentError(path, "role", f"{role!r} does not match the folder {role_dir!r}"))

    lang = meta.get("lang")
    if lang is not None:
        if lang not in LANGS:
            errors.append(ContentError(path, "lang", f"{lang!r} is not one of {', '.join(LANGS)}"))
        elif file_lang is not None and lang != file_lang:
            errors.append(ContentError(path, "lang", f"{lang!r} does not match the file suffix {file_lang!r}"))

    title = meta.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        errors.append(ContentError(path, "title", "must be a non-empty string"))

    tags = meta.get("tags")
    if tags is not None:
        tags = _string_list(tags, path, "tags", errors)

    version = meta.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        errors.append(ContentError(path, "version", f"{version!r} must be an integer >= 1"))

    updated = meta.get("updated")
    if updated is not None:
        if isinstance(updated, dt.datetime):
            errors.append(ContentError(path, "updated", f"{updated!r} must be a date YYYY-MM-DD without a time"))
        elif isinstance(updated, dt.date):
            pass
        else:
            try:
                updated = dt.date.fromisoformat(str(updated)) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(updated)) else None
            except ValueError:
                updated = None
            if updated is None:
                errors.append(ContentError(path, "updated", f"{meta.get('updated')!r} is not a valid date YYYY-MM-DD"))

    summary = meta.get("summary")
    if summary is not None and not isinstance(summary, str):
        errors.append(ContentError(path, "summary", "must be a string (one sentence)"))
    category = meta.get("category")
    if category is not None and category not in CATEGORIES:
        errors.append(ContentError(path, "category", f"{category!r} is not one of {', '.join(CATEGORIES)}"))
    related = meta.get("related")
    if related is not None:
        related = _string_list(related, path, "related", errors)

    if not body.strip():
        errors.append(ContentError(path, "body", "is empty"))

    if errors:
        return None, errors
    article = Article(
        slug=slug, role=role, lang=lang, title=title.strip(), tags=tags, version=version,
        updated=updated, summary=(summary or "").strip(), category=category,
        related=related or (), body=body.strip("\n") + "\n", path=str(path),
        headings=extract_headings(body), checksum=hashlib.sha256(raw).hexdigest(),
    )
    return article, []


def iter_files(directory: str | Path):
    """Yield (role folder, path) of every `*.md` file directly under a role folder."""
    directory = Path(directory)
    for role_dir in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(role_dir.glob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            yield role_dir.name, path


def load_directory(directory: str | Path) -> tuple[list[Article], list[ContentError]]:
    """Parse every article and run the cross-file checks; returns (good articles, all errors)."""
    directory = Path(directory)
    if not directory.is_dir():
        return [], [ContentError(directory, None, "is not a directory")]
    articles: list[Article] = []
    errors: list[ContentError] = []
    for role_dir, path in iter_files(directory):
        if role_dir not in ROLES:
            errors.append(ContentError(path, "role", f"folder {role_dir!r} is not one of {', '.join(ROLES)}"))
            continue
        article, errs = parse_article(path, role_dir)
        errors.extend(errs)
        if article is not None:
            articles.append(article)

    by_slug: dict[str, dict[str, Article]] = {}
    for a in articles:
        langs = by_slug.setdefault(a.slug, {})
        if a.lang in langs:
            errors.append(ContentError(a.path, "slug", f"{a.slug!r} ({a.lang}) is also used by {langs[a.lang].path}"))
        else:
            langs[a.lang] = a
    for slug, langs in sorted(by_slug.items()):
        roles = {a.role for a in langs.values()}
        if len(roles) > 1:
            for a in langs.values():
                errors.append(ContentError(a.path, "role", f"translations of {slug!r} disagree on the role ({', '.join(sorted(roles))})"))
        for lang in LANGS:
            if lang not in langs:
                some = next(iter(langs.values()))
                expected = Path(some.path).with_name(f"{slug}.{lang}.md")
                if not expected.exists():  # an existing but broken file has its own error already
                    errors.append(ContentError(some.path, "lang", f"translation missing: {expected} does not exist"))
    for a in articles:
        for rel in a.related:
            if rel not in by_slug:
                errors.append(ContentError(a.path, "related", f"{rel!r} is not the slug of any article"))
            elif rel == a.slug:
                errors.append(ContentError(a.path, "related", f"{rel!r} refers to the article itself"))
    return articles, errors


def validate(directory: str | Path) -> list[ContentError]:
    """Every problem in the manuals directory (empty list = all good)."""
    return load_directory(directory)[1]
