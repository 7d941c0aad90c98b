"""Issue 13.9: full-width (and small) ＝＋－＠ are neutralised like their ASCII forms in every CSV export."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from helpdesk.audit import Actor
from helpdesk.common import csv_safe


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "＝HYPERLINK(\"http://x\")", "＋1", "－1",
                                  "＠SUM(A1)", "﹦1", "﹢1", "﹣1", "﹫x", "−1", " ＝1", "\u3000＝1", "\t=1"])
def test_formula_starters_are_prefixed(text):
    assert csv_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["ログインできません", "HD-000001", "1-2", "a=b", "", "メール＠自治体"])
def test_plain_text_is_untouched(text):
    assert csv_safe(text) == text


def _rows(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_problem_ticket_export_neutralises_full_width_formulas(client, db, make_user, make_ticket, login):
    from helpdesk.insights import service as insights

    staff = make_user(roles="admin supervisor agent specialist product_owner")
    subjects = ["＝HYPERLINK(\"http://evil.tld\",\"開く\")", "＋cmd|' /C calc'!A0", "－2+3", "＠SUM(1+1)"]
    tickets = [make_ticket(subject=s) for s in subjects]
    problem = insights.create_problem(db.session, Actor(staff.id, staff.email), title="＝1+1 印刷",
                                      ticket_ids=[t.id for t in tickets])
    login(staff)
    response = client.get(f"/insights/problems/{problem.id}/export/tickets.csv")
    assert response.status_code == 200
    cells = [row[1] for row in _rows(response)[1:]]
    assert sorted(cells) == sorted("'" + s for s in subjects)


def test_every_csv_writer_in_the_app_goes_through_csv_safe():
    """Each module that writes CSV uses the shared helper (the check above then covers it)."""
    root = Path(__file__).resolve().parents[2] / "helpdesk"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if re.search(r"csv\.(writer|DictWriter)\(", p.read_text(encoding="utf-8"))
                 and "csv_safe" not in p.read_text(encoding="utf-8")]
    assert offenders == []
