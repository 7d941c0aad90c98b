"""Generate the second held-out set `bench/data/recurring_holdout2.jsonl` (issue 16.2; never tuned on).

Written after the method and its constants were fixed, by a different hand from the labelled set and
the first held-out set: new problems (none of the first two sets' groups), new wrappers (chat-style
notes, forwarded mails, short web forms), and many one-off tickets — a third of them share words
with a group ("ログイン", "在庫", "メール", "配送") without being that problem, which is what pulls
one-offs into groups. No threshold or constant may be chosen on this file.

    .venv/bin/python bench/recurring_make_holdout2.py
"""
from __future__ import annotations

import datetime as dt
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recurring_textkit import GIVEN, SURNAMES, to_fullwidth, trend_weights  # noqa: E402

#: group: (main organisation kind, tickets, trend, phrasings of the same problem)
GROUPS = {
    "v_invoice_pdf": ("wholesaler", 12, "rising", [
        "請求書のPDFをダウンロードしようとすると白紙のページが出てきます",
        "月末の請求書PDFが真っ白で何も印字されていません",
        "請求書を出力したらPDFが空白のページだけになってしまう",
        "請求書ダウンロードのボタンを押すと中身のない白いPDFが保存される",
        "今月分の請求書PDFを開いても白紙です",
    ]),
    "v_report_deadline": ("municipality", 11, "stable", [
        "月次の接種実績報告の提出期限はいつまでですか",
        "接種実績の月次報告は何日までに提出すればよいでしょうか",
        "実績報告の締め切り日を確認したいです",
        "月ごとの接種実績報告、期限が何日か教えてください",
    ]),
    "v_staff_transfer": ("municipality", 12, "falling", [
        "人事異動で担当者が変わるので、前任者のIDを後任に引き継ぎたい",
        "異動した職員のアカウントを新しい担当者に切り替える方法を知りたい",
        "担当交代に伴い、ユーザーIDを後任者へ引き継ぐ手続きを教えてください",
        "4月の異動で担当が替わります。前任のアカウントはどう処理すればよいですか",
    ]),
    "v_search_slow": ("clinic", 13, "rising", [
        "接種者を検索すると結果が出るまで1分以上かかります",
        "被接種者の検索がとても遅く、画面がなかなか返ってこない",
        "接種者検索で名前を入れて検索ボタンを押すと、くるくる回ったまま待たされる",
        "検索結果の表示に時間がかかりすぎて受付が止まってしまう",
        "接種者の検索が最近極端に遅くなりました",
    ]),
    "v_print_label": ("clinic", 10, "stable", [
        "予診票のラベル印刷で位置がずれて枠からはみ出します",
        "ラベルシールに印刷すると文字が半分切れてしまう",
        "ラベル印刷の位置が下にずれて隣のシールにかかる",
        "予診票ラベルを印刷すると印字位置がずれる",
    ]),
    "v_holiday_delivery": ("wholesaler", 11, "falling", [
        "年末年始の配送はいつまで受け付けてもらえますか",
        "年末年始休業中の配送スケジュールを教えてください",
        "年末の最終配送日と年始の配送開始日を知りたい",
        "年末年始期間の納品は可能でしょうか",
    ]),
    "v_csv_mojibake": ("municipality", 12, "rising", [
        "ダウンロードしたCSVをExcelで開くと文字化けします",
        "集計結果のCSVファイルをエクセルで開いたら日本語が全部化けている",
        "CSV出力したデータの漢字が読めない記号になってしまう",
        "CSVをダウンロードしてExcelで開くと文字化けして読めません",
    ]),
    "v_account_expire": ("clinic", 10, "stable", [
        "しばらく使っていなかったら「アカウントの有効期限が切れています」と出てログインできない",
        "90日ログインしなかったためIDが無効になったと表示されます",
        "長期間ログインしていないアカウントが期限切れになりました。再開したい",
        "アカウントの有効期限切れの表示が出て入れません",
    ]),
    "v_dose_interval": ("clinic", 11, "rising", [
        "2回目の接種日を入力すると「接種間隔が足りません」というエラーが出る",
        "前回接種からの間隔エラーが出て2回目の記録を登録できません",
        "接種間隔のチェックに引っかかって記録が保存できない。間隔は守っています",
        "規定の間隔を空けているのに接種間隔不足のエラーになります",
    ]),
    "v_mail_domain": ("municipality", 10, "stable", [
        "システムからのメールが庁内のメールサーバーで迷惑メール扱いされて届かない",
        "お知らせメールが全部迷惑メールフォルダに入ってしまいます",
        "ヘルプデスクからのメールが受信拒否されているようです。送信元ドメインを教えてください",
        "システム通知メールが迷惑メール判定される",
    ]),
}

#: One-off tickets: each its own problem. Many share words with a group without being that problem.
NOISE = [
    "ログイン画面の背景の色を変えることはできますか",
    "ログイン後のトップページに表示されるお知らせを非表示にしたい",
    "在庫の棚卸しを年に何回すればよいか決まりはありますか",
    "在庫画面の並び順をロット番号順にしたい",
    "メールアドレスを2つ登録することはできますか",
    "メールの署名を変更したい",
    "配送業者の連絡先を教えてください",
    "配送用の段ボールを返却する必要はありますか",
    "請求書の宛名を医院名から法人名に変えたい",
    "請求書の支払期限を延ばしてもらうことはできますか",
    "検索画面で生年月日から探すことはできますか",
    "ラベルプリンターのおすすめ機種を教えてください",
    "CSVの列の順番を変更できますか",
    "予防接種の説明会の日程を教えてください",
    "新しく入った看護師に操作研修をしてもらえますか",
    "画面の文字を大きくする方法を知りたい",
    "操作マニュアルの冊子版を郵送してもらえますか",
    "システムの利用料金はかかりますか",
    "医療機関の住所が移転で変わります",
    "院長が交代したので代表者名を変えたい",
    "接種会場を臨時に増やす場合の登録方法",
    "ワクチンの保管用冷凍庫の温度設定の推奨値は",
    "副反応の報告は別のシステムですか",
    "問診票の様式をダウンロードしたい",
    "他の自治体の住民に接種した場合の費用請求先は",
    "接種券の再発行の依頼が住民から来ています",
    "システムのメンテナンス予定日を知りたい",
    "スマートフォンから使えますか",
    "Macでも利用できますか",
    "複数の医療機関を1つのIDで管理できますか",
    "ヘルプデスクの電話がつながりにくい",
    "先日の問い合わせの回答がまだ来ていません",
    "FAXで問い合わせてもよいですか",
    "英語表示に切り替えられますか",
    "卸業者の担当者を変更したい",
    "納品書の再発行をお願いしたい",
    "ワクチンの有効期限が近いものの扱いについて",
    "小児用と成人用のワクチンの取り違え防止の注意点",
    "予約システムとの連携は予定されていますか",
    "データのバックアップはどこに保存されていますか",
    "個人情報の保存期間を教えてください",
    "監査の資料としてアクセス記録を提出してほしい",
    "研修用のテスト環境はありますか",
    "操作中にブラウザの戻るボタンを押したらどうなりますか",
    "パスワードの有効期限は何日ですか",
    "二重に届いたお知らせメールの片方を消してよいか",
    "配送予定表を紙で受け取りたい",
    "接種実績のグラフを市のホームページに載せてよいか",
    "新型以外のワクチンも登録できますか",
    "ログインIDの文字数に制限はありますか",
    "医療機関コードの桁数を確認したい",
    "住民からの苦情の受付窓口はどこですか",
    "災害時にシステムが止まった場合の連絡方法",
    "ワクチン接種後の待機時間の記録欄はありますか",
    "古い端末のWindows 8.1で使えるか知りたい",
]

WRAPPERS = [
    lambda r, t, who: f"{t}。",
    lambda r, t, who: f"お世話になります。{who}です。\n{t}。\nよろしくお願いします。",
    lambda r, t, who: f"【受付メモ】{who}様より入電。{t}とのこと。折返し希望。",
    lambda r, t, who: f"----- 転送メッセージ -----\n件名: お問い合わせ\n{t}。\n{who}",
    lambda r, t, who: f"{t}。至急確認をお願いします。\n\n{who}\nTEL 0{r.randint(10, 99)}-{r.randint(100, 999)}-{r.randint(1000, 9999)}",
    lambda r, t, who: f"チャットからの引き継ぎ：{t}（利用者の言葉のまま）",
    lambda r, t, who: to_fullwidth(t),
]
DETAILS = ["昨日から発生しています。", "他の職員も同じです。", "急ぎではありません。", "朝から何度か試しました。",
           "画面の写真を添付します。", "先週までは問題ありませんでした。", ""]


def _ticket(r, text: str) -> tuple[str, str, str]:
    who = f"{r.choice(SURNAMES)}{r.choice(GIVEN)}"
    style = r.randrange(len(WRAPPERS))
    body = WRAPPERS[style](r, text, who)
    if r.random() < 0.4:
        body += "\n" + r.choice(DETAILS)
    channel = "phone" if style == 2 else "email" if style in (1, 3, 4) else "web"
    subject = r.choice([text[:20], text[:28] + "…", "問い合わせ", "至急", text.split("、")[0][:30]])
    return subject, body, channel


def _created(r, trend: str, end: dt.date, weeks: int = 12) -> str:
    week = r.choices(range(weeks), weights=trend_weights(trend, weeks))[0]
    day = end - dt.timedelta(days=7 * (weeks - week) - r.randint(0, 6))
    return dt.datetime(day.year, day.month, day.day, r.randint(8, 19), r.randint(0, 59),
                       tzinfo=dt.timezone(dt.timedelta(hours=9))).isoformat()


def main(out: str = "bench/data/recurring_holdout2.jsonl", seed: int = 16) -> None:
    r = random.Random(seed)
    end = dt.date(2026, 11, 28)
    kinds = ["municipality", "clinic", "wholesaler"]
    codes = {k: [f"V{k[0].upper()}{r.randint(10000, 99999)}" for _ in range(15)] for k in kinds}
    rows = []
    for group, (kind, size, trend, texts) in GROUPS.items():
        for i in range(size):
            org_kind = kind if r.random() < 0.75 else r.choice(kinds)
            subject, body, channel = _ticket(r, texts[i % len(texts)])
            rows.append({"subject": subject, "body": body, "org_code": r.choice(codes[org_kind]),
                         "org_kind": org_kind, "channel": channel, "created_at": _created(r, trend, end),
                         "group": group})
    for text in NOISE:
        org_kind = r.choice(kinds)
        subject, body, channel = _ticket(r, text)
        rows.append({"subject": subject, "body": body, "org_code": r.choice(codes[org_kind]), "org_kind": org_kind,
                     "channel": channel, "created_at": _created(r, "stable", end), "group": None})
    r.shuffle(rows)
    with open(out, "w", encoding="utf-8") as fh:
        for n, row in enumerate(rows, 1):
            fh.write(json.dumps({"external_id": f"V2-{n:04d}", **row}, ensure_ascii=False) + "\n")
    print(f"{out}: {len(rows)} tickets, {len(GROUPS)} groups, {len(NOISE)} one-offs")


if __name__ == "__main__":
    main(*sys.argv[1:])
