#!/usr/bin/env bash
# A plain `pip install .` (no extras, what an operator does) runs every feature: import, insights, kb.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q "$repo"
cd "$work"  # nothing from the checkout on sys.path or as MANUALS_DIR
export HELPDESK_INSTANCE="$work/instance"
unset DATABASE_URL REDIS_URL MANUALS_DIR
"$work/venv/bin/helpdesk" init-db
"$work/venv/bin/helpdesk" import-tickets "$repo/bench/data/recurring_labelled.jsonl" | tail -1
"$work/venv/bin/helpdesk" insights recurring --json > recurring.json
"$work/venv/bin/python" - <<'PY'
import json
groups = json.load(open("recurring.json"))
assert isinstance(groups, list) and groups, "no recurring groups from the import"
assert {"label", "size", "ticket_refs", "external_ids", "top_terms"} <= set(groups[0]), groups[0].keys()
print(f"insights recurring: {len(groups)} groups, largest {groups[0]['size']}")
PY
"$work/venv/bin/helpdesk" kb suggest "初期パスワードでログインできない" --json > suggest.json
"$work/venv/bin/python" - <<'PY'
import json
hits = json.load(open("suggest.json"))
assert hits and {"slug", "title", "score"} <= set(hits[0]), hits
print(f"kb suggest: {hits[0]['slug']} first of {len(hits)}")
PY
"$work/venv/bin/helpdesk" kb sync | tail -1
echo "plain install OK"
