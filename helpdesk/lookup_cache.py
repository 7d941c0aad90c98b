"""Per-process caches for small, rarely changed lookup tables read on every request that creates a ticket.

Categories, SLA policies and the desk calendar, webhook subscriptions, and the API token with its user
and organisation are read by each new ticket; reading them from the database every time costs one
round trip each (about a third of a creation's work). A `LookupCache` keeps what a loader returned for `LOOKUP_CACHE_SECONDS` (5 s by
default, 0 disables it) and forgets it at once when this process commits a change to one of the
watched models. Another process sees a change within the TTL: a new SLA policy or webhook
subscription applies to tickets created from a few seconds after it was saved.

Cached values must be plain data (tuples, dataclasses, dicts), never ORM instances bound to a
session. Entries are keyed by the engine, so a test run that switches databases never mixes them.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

DEFAULT_TTL = 5.0
_clock = time.monotonic  # tests replace it to step over the TTL without sleeping
_registry: list["LookupCache"] = []
_TOUCHED = "helpdesk_lookup_cache_touched"


class LookupCache:
    def __init__(self, name: str, watch: Callable[[], tuple[type, ...]]):
        self.name = name
        self._watch = watch  # called lazily: the models live in domain packages
        self._watched: tuple[type, ...] | None = None
        self._lock = threading.Lock()
        self._entries: dict[tuple, tuple[float, Any]] = {}
        self._generation = 0
        _registry.append(self)

    @property
    def watched(self) -> tuple[type, ...]:
        if self._watched is None:
            self._watched = tuple(self._watch())
        return self._watched

    def get(self, session, key: Any, loader: Callable[[], Any], *, keep_none: bool = True) -> Any:
        """`loader()`'s value for `key`, from the cache while fresh; `keep_none=False` never caches a None
        (a miss is asked again next time, e.g. a token created a moment ago in another process)."""
        ttl = ttl_seconds()
        if ttl <= 0 or _touched(session, self):
            return loader()  # disabled, or this transaction changed the table: read our own writes
        full_key = (id(session.get_bind()), key)
        now = _clock()
        with self._lock:
            hit = self._entries.get(full_key)
            generation = self._generation
        if hit is not None and hit[0] > now:
            return hit[1]
        value = loader()
        if value is None and not keep_none:
            return None
        with self._lock:
            if generation == self._generation:  # not invalidated while we were loading
                if len(self._entries) > 256:
                    self._entries.clear()
                self._entries[full_key] = (now + ttl, value)
        return value

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


def column_values(obj) -> dict[str, Any]:
    """Every column attribute of a loaded ORM instance, as plain values (cacheable)."""
    return {attr.key: getattr(obj, attr.key) for attr in obj.__mapper__.column_attrs}


def attach(session, cls: type, values: dict[str, Any]):
    """An instance of `cls` in `session` built from cached column values, without a query.

    The identity map's instance wins if the session already has one. Otherwise the object is built,
    marked as loaded from the database (make_transient_to_detached) and added as persistent; its
    many-to-one relationships then resolve from the identity map when the related rows are attached too.
    """
    from sqlalchemy.orm import make_transient_to_detached

    mapper = cls.__mapper__
    identity = session.identity_key(cls, tuple(values[c.key] for c in mapper.primary_key))
    existing = session.identity_map.get(identity)
    if existing is not None:
        return existing
    # Built like a query result (values straight into the instance dict, no per-attribute change events),
    # then given its identity as a clean, loaded object.
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def link_loaded(obj, relationship: str, related) -> None:
    """Set a many-to-one link of an attached object as loaded (unless it is loaded already)."""
    from sqlalchemy.orm.attributes import set_committed_value

    if relationship not in obj.__dict__:
        set_committed_value(obj, relationship, related)


def ttl_seconds() -> float:
    if not has_app_context():
        return 0.0
    return float(current_app.config.get("LOOKUP_CACHE_SECONDS", DEFAULT_TTL))


def invalidate_all() -> None:
    for cache in _registry:
        cache.invalidate()


def _touched(session, cache: LookupCache) -> bool:
    touched = session.info.get(_TOUCHED)
    return bool(touched) and cache in touched


def _caches_for(objects) -> set[LookupCache]:
    hit: set[LookupCache] = set()
    for obj in objects:
        for cache in _registry:
            if cache not in hit and isinstance(obj, cache.watched):
                hit.add(cache)
    return hit


@event.listens_for(Session, "after_flush")
def _note_changes(session, flush_context) -> None:
    if not _registry:
        return
    hit = _caches_for(list(session.new) + list(session.dirty) + list(session.deleted))
    if hit:
        session.info.setdefault(_TOUCHED, set()).update(hit)
        for cache in hit:  # other sessions of this process must not keep reading the old rows
            cache.invalidate()


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_changes(state) -> None:
    if not _registry or not (state.is_update or state.is_delete or state.is_insert):
        return
    mapper = state.bind_mapper
    if mapper is None:
        return
    hit = {c for c in _registry if issubclass(mapper.class_, c.watched)}
    if hit:
        state.session.info.setdefault(_TOUCHED, set()).update(hit)
        for cache in hit:
            cache.invalidate()


def _forget(session) -> None:
    touched = session.info.pop(_TOUCHED, None)
    for cache in touched or ():
        cache.invalidate()  # committed: reload; rolled back: what was read inside is void


@event.listens_for(Session, "after_commit")
def _after_commit(session) -> None:
    if not session.in_nested_transaction():
        _forget(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        _forget(session)
