"""A small manuals tree written into a temp dir (the real content is tested by `helpdesk kb check`)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ARTICLES = {
    # slug: (role, ja title, ja body, en title, en body, tags)
    "password-reset": ("common", "パスワードを忘れたときの再設定", "ログイン画面の「パスワードを忘れた方」を押し、登録メールアドレスに届く再設定用リンクから新しいパスワードを設定します。",
                       "Resetting a forgotten password", "On the login screen press \"Forgot your password\" and follow the reset link sent to your registered e-mail address.",
                       ["パスワード", "再設定"]),
    "account-locked": ("common", "アカウントがロックされた場合", "パスワードを5回続けて間違えるとアカウントがロックされます。30分待つか、管理者にロック解除を依頼してください。",
                       "When your account is locked", "After five failed sign-in attempts the account is locked. Wait 30 minutes or ask your administrator to unlock it.",
                       ["ロック", "ログイン"]),
    "desired-quantity": ("clinic", "希望量の入力", "医療機関は「希望量登録」画面でワクチンの希望数量を入力し、「登録」ボタンを押します。締切日を過ぎると入力できません。",
                         "Entering the desired quantity", "Clinics enter the desired number of vaccine vials on the Desired Quantity screen and press Register before the deadline.",
                         ["希望量", "数量"]),
    "delivery-confirmation": ("clinic", "納品の確認", "ワクチンが届いたら「納品確認」画面で受領した数量を確認し、「受領」ボタンを押します。",
                              "Confirming a delivery", "When the vaccine arrives, check the received quantity on the Delivery Confirmation screen and press Receive.",
                              ["納品", "受領"]),
    "delivery-completion": ("wholesaler", "配送完了の登録", "卸業者は配送が終わったら「配送完了登録」画面で納品数量を入力し、完了を登録します。",
                            "Recording a completed delivery", "Wholesalers record a completed delivery on the Delivery Completion screen with the delivered quantity.",
                            ["配送", "納品", "完了"]),
    "allocation-request": ("municipality", "割当量の申請と調整", "自治体は「割当申請」画面で医療機関ごとの割当量を申請・調整します。",
                           "Requesting and adjusting allocation", "Municipalities request and adjust the vaccine allocation per clinic on the Allocation Request screen.",
                           ["割当", "申請"]),
}


def write_article(root: Path, role: str, slug: str, lang: str, title: str, body: str, tags, **extra) -> Path:
    folder = root / role
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"slug": slug, "role": role, "title": title, "lang": lang, "tags": tags, "version": 1,
            "updated": "2026-11-01", **extra}
    lines = ["---"]
    for key, value in meta.items():
        if value is None:
            continue
        if isinstance(value, list):
            lines.append(f"{key}: [{', '.join(repr(v) if isinstance(v, str) else str(v) for v in value)}]")
        else:
            lines.append(f"{key}: {value}")
    lines.append("---")
    path = folder / f"{slug}.{lang}.md"
    path.write_text("\n".join(lines) + "\n" + textwrap.dedent(f"""
        # {title}

        ## 手順 / Steps

        {body}
        """), encoding="utf-8")
    return path


@pytest.fixture
def manuals_dir(tmp_path) -> Path:
    root = tmp_path / "manuals"
    for slug, (role, ja_t, ja_b, en_t, en_b, tags) in ARTICLES.items():
        write_article(root, role, slug, "ja", ja_t, ja_b, tags)
        write_article(root, role, slug, "en", en_t, en_b, tags)
    return root
