"""Issue 13.11: person names in ticket text (signatures, 様/さん/先生, variant kanji) are masked in evidence."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpdesk.audit import Actor
from helpdesk.insights import service, tracker
from helpdesk.insights.pii import NAME, mask_person_names, scrub

SIGNED = ("在庫一覧を開くとE500エラーになります。至急ご確認ください。\n\n"
          "さくら市 健康推進課\n髙橋 誠\nTEL 03-1234-5678")


@pytest.mark.parametrize("text, gone", [
    (SIGNED, ["髙橋", "誠"]),
    ("山﨑様、ご確認をお願いします。", ["山﨑"]),
    ("渡邊さんから電話がありました。", ["渡邊"]),
    ("田中クリニックの鈴木先生より依頼。", ["鈴木"]),
    ("担当：齋藤\n画面が真っ白です。", ["齋藤"]),
    ("みどり町健康福祉課の山口です。", ["山口"]),
    ("折り返しは林までお願いします。", ["林"]),
    ("氏名：濵田 花子", ["濵田", "花子"]),
])
def test_names_are_masked(text, gone):
    out = mask_person_names(text)
    assert NAME in out
    for name in gone:
        assert name not in out, out


@pytest.mark.parametrize("text", ["田中クリニックから問い合わせがありました。", "さくら市役所の担当者様へ",
                                  "お客様にご案内をお願いします。", "エラーがある場合は再読み込みしてください。",
                                  "佐藤薬品株式会社の配送センター"])
def test_organisations_and_roles_stay(text):
    assert mask_person_names(text) == text


def test_scrub_masks_names_only_when_asked():
    assert scrub("髙橋 誠です") == "髙橋 誠です"  # clustering and search keep their text
    assert scrub("髙橋 誠です", detect_names=True) == f"{NAME}です"


def test_fugashi_is_imported_lazily():
    code = "import sys, helpdesk.insights.pii; print('fugashi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def _problem_with_signed_ticket(db, make_ticket, po):
    ticket = make_ticket(subject="在庫一覧でE500（髙橋）", body=SIGNED)
    other = make_ticket(subject="在庫画面エラー", body="在庫一覧がエラーになる。渡邊さんにも確認済み。")
    actor = Actor.for_user(po)
    problem = service.create_problem(db.session, actor, title="在庫一覧でE500", ticket_ids=[ticket.id, other.id])
    return problem, actor


def test_evidence_pack_masks_signature_names(db, make_ticket, po):
    problem, _actor = _problem_with_signed_ticket(db, make_ticket, po)
    pack = service.evidence(db.session, problem.id)
    dumped = json.dumps(pack["examples"], ensure_ascii=False) + service.evidence_markdown(pack)
    for name in ("髙橋", "誠", "渡邊", "03-1234-5678"):
        assert name not in dumped, name
    assert NAME in dumped and "在庫一覧" in dumped


def test_tracker_webhook_payload_masks_signature_names(db, make_ticket, po):
    problem, _actor = _problem_with_signed_ticket(db, make_ticket, po)
    body = json.dumps(tracker.payload(db.session, problem.id), ensure_ascii=False)
    assert "髙橋" not in body and "渡邊" not in body and NAME in body
