"""Generate the held-out set `bench/data/recurring_holdout.jsonl` (never used for choosing the method).

Written separately from the labelled set: mostly different problems, different wording, and its
own wrappers (greetings, signatures, memo styles), so a method that merely learnt the labelled
set's boilerplate does not pass here. Two groups repeat a labelled-set problem in new words.

    .venv/bin/python bench/recurring_make_holdout.py
"""
from __future__ import annotations

import datetime as dt
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recurring_textkit import ROMAJI, SURNAMES, GIVEN, to_fullwidth, to_halfwidth_kana, trend_weights  # noqa: E402

GROUPS = {
    "h_lock": ("clinic", 14, "stable", [
        "パスワード誤入力が続いたためIDが使用停止（ロック）になりました",
        "ログインを何度か失敗したら、アカウントが凍結されたようで入れません",
        "「一定回数以上失敗したためロックしました」というメッセージが出て使えない",
        "IDがロックされたので解除してほしい",
        "間違ったパスワードを入れすぎてロックされました。解除申請はどうすれば？",
    ]),
    "h_2fa": ("municipality", 15, "rising", [
        "ログイン時に送られてくるはずの認証番号のショートメールが来ません",
        "二要素認証の番号がメールで届かないのでログインを完了できません",
        "ワンタイムパスワード入力画面で待っていますが、コードのメールが一向に届きません",
        "ログインの最後に求められる確認コードが受信できない状態です",
        "認証コード送信ボタンを押しても携帯にSMSが届かない",
    ]),
    "h_email_change": ("clinic", 10, "stable", [
        "登録しているメールアドレスを変更したいのですが、変更画面が見つかりません",
        "担当者のメールアドレスが変わったので、システムの登録アドレスを新しいものにしたい",
        "プロフィールのメールアドレスを更新しようとすると「変更できません」と出ます",
        "メールアドレス変更の手続きを教えてください。ドメインが変わりました",
    ]),
    "h_temperature_upload": ("clinic", 12, "rising", [
        "冷蔵庫の温度記録ファイルを登録しようとするとエラーになります",
        "温度ロガーのデータをアップロードすると「データが読み取れません」と表示される",
        "保管温度の記録を提出する画面でファイルを添付すると失敗する",
        "温度管理記録のアップロードが最後まで進まずエラー終了する",
    ]),
    "h_stock_negative": ("clinic", 13, "rising", [
        "在庫数がマイナスで表示されています",
        "在庫画面の残数が-20本になっていて、実際の在庫と合いません",
        "接種記録を入れたら在庫がマイナスになってしまいました",
        "手元には在庫があるのに、システムの在庫数が負の数になっている",
    ]),
    "h_clinic_approval": ("municipality", 11, "falling", [
        "医療機関の新規登録を申請しましたが、承認待ちのまま1週間以上たっています",
        "市で医療機関の登録を承認しようとしても承認ボタンが表示されません",
        "新しく参加する医療機関の登録申請が「審査中」から変わらない",
        "医療機関登録の承認がいつまでも完了しない",
    ]),
    "h_delivery_timeslot": ("wholesaler", 10, "stable", [
        "納品の時間帯を午前から午後に変更したいという依頼が医療機関からありました",
        "配送時間の指定を変えたいのですが、システムで変更できますか",
        "クリニックの休診日に合わせて配送時間帯を変えたい",
        "午前指定の配送を夕方に変更したいです",
    ]),
    "h_record_delete": ("clinic", 14, "stable", [
        "接種記録を二重に登録してしまったので、一件を削除したい",
        "間違えて登録した接種記録を取り消す方法を教えてください",
        "誤入力した接種記録の削除ボタンがありません",
        "同じ人の接種記録が2件になってしまいました。片方を消したいです",
    ]),
    "h_ipad_freeze": ("clinic", 12, "rising", [
        "iPadのSafariで入力画面を開くと固まって動かなくなります",
        "タブレット（iPad）で操作していると画面がフリーズする",
        "iPadから接種会場で入力しているとページが反応しなくなる",
        "Safariだと入力ボタンを押しても何も起きず画面が止まってしまう",
    ]),
    "h_lot_missing": ("clinic", 12, "stable", [
        "届いたワクチンのロット番号が選択肢に出てきません",
        "接種記録の入力でロット番号のプルダウンに今回のロットがない",
        "新しいロットを選ぼうとしても一覧に表示されない",
        "ロット番号を入力すると「存在しないロットです」と表示される",
    ]),
    "h_notice_mail": ("municipality", 10, "falling", [
        "システムからのお知らせメール（配送予定のお知らせ）が届かなくなりました",
        "配送予定の通知メールが先月から来ていません",
        "以前は届いていた配送通知のメールが受信できなくなった",
        "お知らせメールの配信が止まっているようです",
    ]),
    "h_delivery_damaged": ("clinic", 11, "stable", [
        "届いた保冷箱が破損していて、中のバイアルが使えるか分かりません",
        "納品された箱がへこんでいて、温度表示が基準を超えていました",
        "配送されたワクチンの箱が濡れて破れていました。使用してよいですか",
        "受け取った時点で保冷剤が溶けていて温度逸脱の可能性があります",
    ]),
}

NOISE = [
    "来月の説明会に参加できる人数に上限はありますか",
    "ヘルプデスクの電話番号が変わったと聞きましたが本当ですか",
    "操作マニュアルを紙で送っていただけますか",
    "年末の最終配送日を教えてください",
    "市の広報に載せる問い合わせ先を確認したいです",
    "システムの利用規約はどこで読めますか",
    "保冷バッグの返却方法を教えてください",
    "院内LANのプロキシ設定で注意することはありますか",
    "研修の録画は見られますか",
    "ワクチンの種類ごとの解凍時間を知りたい",
    "複数の医療機関を兼務している場合のIDはどうなりますか",
    "帳票の様式を市独自に変えることはできますか",
    "配送業者のドライバーの対応が丁寧で助かりました",
    "来年度もこのシステムを使う予定ですか",
    "接種会場の地図データを登録する機能はありますか",
    "問い合わせの回答をFAXでもらうことはできますか",
    "サポート終了予定のブラウザを教えてください",
    "市役所の移転に伴い代表電話が変わります",
    "職員研修で使うテスト環境はありますか",
    "契約書の押印欄について確認させてください",
    "ワクチン接種後の待機時間の目安はありますか",
    "県への報告様式の最新版はどこにありますか",
    "医師会との調整の進め方について相談したい",
    "災害時の配送優先順位はどうなっていますか",
    "カレンダー表示を月曜始まりにできますか",
    "患者さんから副反応の相談を受けましたがどこにつなげばよいですか",
    "夜間休日の緊急連絡網を更新したので共有します",
    "画面右上のお知らせが消せません",
    "子ども用の接種量の計算方法を教えてほしい",
    "配送伝票の控えはいつまで保管すればよいですか",
    "Can we get the monthly usage statistics in English?",
    "Is there a sandbox environment for testing the API integration?",
    "システム利用料の請求先を本部に変更したい",
    "見学用のデモアカウントを発行してもらえますか",
    "ワクチン有効期限の延長の通知について確認したい",
]

ORG_NAMES = {"municipality": ["{c}町役場 保健福祉課", "{c}村 住民課", "{c}区 保健予防課"],
             "clinic": ["{s}医院", "{s}クリニック", "医療法人{s}会"],
             "wholesaler": ["{s}メディカル株式会社", "{s}薬業 物流センター"]}
TOWNS = ["青葉", "桜台", "緑川", "東山", "南浜", "北野", "西岡", "中央", "若葉", "本町"]
OPENERS = ["ご担当者さま", "失礼いたします。", "ヘルプデスク御中", "問い合わせです。", "", "", "お疲れさまです。"]
CLOSERS = ["以上、ご確認ください。", "回答お待ちしております。", "宜しくお願い致します。", "すみませんがお願いします。", ""]
MEMO = ["受付メモ：{org} {name}さん　内容→{text}　要折返し（{tel}）",
        "TEL受付 {org}/{name}様：{text}。回答期限は本日中。連絡先 {tel}",
        "{org}から電話あり。{text}とのことで、確認後に折り返す。"]


def tel(r):
    t = f"0{r.randint(3, 99)}-{r.randint(100, 9999)}-{r.randint(1000, 9999)}"
    return to_fullwidth(t) if r.random() < 0.3 else t


def wrap(r, kind: str, text: str) -> tuple[str, str]:
    sur, giv = r.choice(SURNAMES), r.choice(GIVEN)
    org = r.choice(ORG_NAMES[kind]).format(c=r.choice(TOWNS), s=r.choice(SURNAMES))
    style = r.random()
    if style < 0.3:
        return "phone", r.choice(MEMO).format(org=org, name=sur, text=text.rstrip("。"), tel=tel(r))
    if style < 0.65:
        body = "\n".join(x for x in [r.choice(OPENERS), f"{org}　{sur}{giv}と申します。", text + "。",
                                    r.choice(CLOSERS), f"{sur} {giv}", f"電話 {tel(r)}"] if x)
        return "email", body
    if style < 0.9:
        return "web", "\n".join(x for x in [text + ("。" if r.random() < 0.5 else ""), r.choice(CLOSERS)] if x)
    return "web", to_halfwidth_kana(text) if r.random() < 0.5 else to_fullwidth(text)


def created(r, trend: str, end: dt.date, weeks: int = 12) -> str:
    week = r.choices(range(weeks), weights=trend_weights(trend, weeks))[0]
    day = end - dt.timedelta(days=7 * (weeks - week) - r.randint(0, 6))
    return dt.datetime(day.year, day.month, day.day, r.randint(8, 20), r.randint(0, 59),
                       tzinfo=dt.timezone(dt.timedelta(hours=9))).isoformat()


def main(out: str = "bench/data/recurring_holdout.jsonl", seed: int = 777) -> None:
    r = random.Random(seed)
    end = dt.date(2026, 11, 21)
    rows, n = [], 0
    kinds = ["municipality", "clinic", "wholesaler"]
    codes = {k: [f"H{k[0].upper()}{r.randint(10000, 99999)}" for _ in range(20)] for k in kinds}
    for group, (main_kind, size, trend, texts) in GROUPS.items():
        for i in range(size):
            kind = main_kind if r.random() < 0.7 else r.choice(kinds)
            text = texts[i % len(texts)]
            if r.random() < 0.3:
                text += "。" + r.choice([t for t in texts if t != text])
            channel, body = wrap(r, kind, text)
            subject = r.choice([text[:18], text[:25] + "…", "お問い合わせ", text.split("、")[0][:30]])
            n += 1
            rows.append({"external_id": f"HO-{n:04d}", "subject": subject, "body": body,
                         "org_code": r.choice(codes[kind]), "org_kind": kind, "channel": channel,
                         "created_at": created(r, trend, end), "group": group})
    for text in NOISE:
        kind = r.choice(kinds)
        if text.isascii():
            channel, body = "email", f"Hello,\n{text}\nRegards,\n{r.choice(ROMAJI)}"
        else:
            channel, body = wrap(r, kind, text)
        n += 1
        rows.append({"external_id": f"HO-{n:04d}", "subject": text[:20], "body": body,
                     "org_code": r.choice(codes[kind]), "org_kind": kind, "channel": channel,
                     "created_at": created(r, "stable", end), "group": None})
    r.shuffle(rows)
    with open(out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{out}: {len(rows)} tickets, {len(GROUPS)} groups, {len(NOISE)} noise")


if __name__ == "__main__":
    main(*sys.argv[1:])
