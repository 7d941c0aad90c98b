"""Fixtures for insights tests: realistic tickets imported from the labelled set."""
import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "bench" / "data"


@pytest.fixture
def import_lines(db):
    """Import JSONL lines (dicts or str) through the real importer; returns the summary."""
    from helpdesk.tickets.cli import import_tickets

    def do(rows):
        lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
        return import_tickets(db.session, lines)

    return do


@pytest.fixture
def labelled_rows():
    with open(DATA / "recurring_labelled.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture
def po(make_user):
    return make_user(roles="product_owner", email="po-test@helpdesk.example.jp", name="企画 テスト")
