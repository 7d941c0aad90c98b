"""The CLI contract: `helpdesk insights recurring --json` and `helpdesk insights trends`."""
import csv
import io
import json


def test_recurring_json_contract(app, import_lines, labelled_rows):
    summary = import_lines(labelled_rows)
    assert summary.created == len(labelled_rows)
    result = app.test_cli_runner().invoke(args=["insights", "recurring", "--json"])
    assert result.exit_code == 0, result.output
    groups = json.loads(result.output)
    assert groups, "the labelled set has recurring groups"
    for g in groups:
        assert set(g) == {"label", "size", "ticket_refs", "external_ids", "top_terms"}
        assert g["size"] == len(g["ticket_refs"]) == len(g["external_ids"]) >= 3
        assert all(ref.startswith("HD-") and len(ref) == 9 for ref in g["ticket_refs"])
        assert isinstance(g["label"], str) and g["label"]
        assert all(isinstance(t, str) for t in g["top_terms"])
    sizes = [g["size"] for g in groups]
    assert sizes == sorted(sizes, reverse=True)
    # Noise tickets mostly stay out, and every external id is one of the imported ones.
    truth = {r["external_id"]: r["group"] for r in labelled_rows}
    grouped = [e for g in groups for e in g["external_ids"]]
    assert set(grouped) <= set(truth)
    noise = [e for e in grouped if truth[e] is None]
    assert len(noise) <= 0.15 * sum(1 for v in truth.values() if v is None)


def test_recurring_window_and_bad_dates(app, import_lines, labelled_rows):
    import_lines(labelled_rows)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["insights", "recurring", "--since", "2030-01-01", "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == []
    bad = runner.invoke(args=["insights", "recurring", "--since", "yesterday", "--json"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output


def test_trends_json_and_csv(app, import_lines):
    rows = [{"external_id": f"TR-{i}", "subject": "件名", "body": "本文", "org_code": "=CMD" if i == 0 else ("131016" if i % 2 else "C0001"),
             "org_kind": "municipality" if i % 2 else "clinic", "channel": "web",
             "created_at": f"2026-11-{10 + i % 3:02d}T10:00:00+09:00"} for i in range(9)]
    import_lines(rows)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["insights", "trends", "--since", "2026-11-01", "--until", "2026-11-30",
                                 "--by", "role", "--period", "day", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {(d["period"], d["key"]): d["count"] for d in data} == {
        ("2026-11-10", "clinic"): 2, ("2026-11-10", "municipality"): 1, ("2026-11-11", "municipality"): 2,
        ("2026-11-11", "clinic"): 1, ("2026-11-12", "clinic"): 2, ("2026-11-12", "municipality"): 1}
    weekly = json.loads(runner.invoke(args=["insights", "trends", "--since", "2026-11-01", "--until", "2026-11-30",
                                            "--by", "role", "--json"]).output)
    assert {d["key"]: d["count"] for d in weekly if d["period"] == "2026-11-09"} == {"clinic": 5, "municipality": 4}
    out = runner.invoke(args=["insights", "trends", "--since", "2026-11-01", "--until", "2026-11-30",
                              "--by", "org", "--csv"]).output
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["period", "by", "key", "count"]
    assert ["2026-11-09", "org", "'=CMD", "1"] in table  # formula neutralised


def test_refresh_command_builds_groups(app, import_lines, labelled_rows):
    import_lines(labelled_rows[:200])
    result = app.test_cli_runner().invoke(args=["insights", "refresh"])
    assert result.exit_code == 0, result.output
    assert "groups:" in result.output
    from helpdesk.extensions import db
    from helpdesk.insights.models import RecurringGroup

    assert db.session.query(RecurringGroup).filter_by(active=True).count() > 0
