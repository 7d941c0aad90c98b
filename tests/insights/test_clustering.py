"""Recurring-issue grouping on realistic tickets (the labelled set as background)."""
import json
from pathlib import Path

import pytest

from helpdesk.insights import clustering
from helpdesk.insights.textprep import prepare, strip_boilerplate

DATA = Path(__file__).resolve().parents[2] / "bench" / "data" / "recurring_labelled.jsonl"


@pytest.fixture(scope="module")
def background():
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["external_id"], f"{r['subject']}\n{r['body']}") for r in rows], {r["external_id"]: r["group"] for r in rows}


def _group_of(groups, key):
    for i, g in enumerate(groups):
        if key in g.keys:
            return i
    return None


def test_paraphrases_together_and_login_problems_apart(background):
    items, _ = background
    new = [
        ("P1", "ログインできません\nお世話になっております。〇〇市の佐藤です。パスワードを何度も間違えてしまい、アカウントがロックされました。解除をお願いします。"),
        ("P2", "ロック解除\nID入れたら「アカウントはロックされています」って出て入れない。パスワード連続で間違えたせいかも"),
        ("P3", "初回ログイン\n届いた通知書の初期パスワードを入れても、パスワードが違いますと出て最初のログインができません。"),
    ]
    groups = clustering.cluster_texts(items + new)
    g1, g2, g3 = (_group_of(groups, k) for k in ("P1", "P2", "P3"))
    assert g1 is not None and g1 == g2
    assert g3 is not None and g3 != g1


def test_groups_are_recurring_and_label_readable(background):
    items, truth = background
    groups = clustering.cluster_texts(items)
    assert all(len(g.keys) >= clustering.MIN_GROUP_SIZE for g in groups)
    assert [len(g.keys) for g in groups] == sorted((len(g.keys) for g in groups), reverse=True)
    biggest = groups[0]
    assert biggest.label and biggest.top_terms and biggest.representative in biggest.keys
    # Precision: almost every pair inside a group shares the true label.
    same = total = 0
    for g in groups:
        labels = [truth[k] for k in g.keys]
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                total += 1
                same += labels[i] is not None and labels[i] == labels[j]
    assert same / total >= 0.9


def test_one_offs_are_left_out():
    items = [(i, text) for i, text in enumerate([
        "駐車場\n説明会の会場に駐車場はありますか。",
        "請求書\n請求書の宛名を変更したいです。",
        "ポスター\n掲示用ポスターのデータはありますか。",
        "祝日\n祝日も配送は行われますか。",
    ])]
    assert clustering.cluster_texts(items) == []
    assert clustering.cluster_texts([]) == []


def test_boilerplate_and_personal_data_are_removed_before_vectorising():
    text = ("お世話になっております。\n山田市 健康推進課の佐藤でございます。\n在庫一覧でエラーが出ます。\n"
            "発注番号：PO-2026-123456\nよろしくお願いいたします。\n――――\nTEL：03-1234-5678")
    cleaned = strip_boilerplate(text)
    assert "エラー" in cleaned
    for gone in ("お世話", "佐藤", "PO-2026", "1234", "よろしく"):
        assert gone.lower() not in cleaned
    tokens = prepare("", "ワクチンが届かない")
    assert "届く_ない" in tokens.split()
