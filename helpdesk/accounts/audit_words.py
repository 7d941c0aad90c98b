"""The audit trail in words: one mapping from action codes to names, and details rendered as sentences.

Codes are what services write (`login.succeeded`); people read `ログイン成功`. A code nobody named yet
falls back to a readable form built from its parts, never to an error.
"""
from __future__ import annotations

import datetime as dt
import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from helpdesk.common import TOKYO
from helpdesk.templating import CHANNEL_LABELS, ROLE_LABELS, STATUS_LABELS, USER_ROLE_LABELS

#: every action code written by audit.record (see tests/accounts/test_audit_words.py, which checks the list)
ACTIONS = {
    "access.denied": _l("アクセス拒否"),
    "export.downloaded": _l("ファイルを出力"),
    "accounts.outreach_exported": _l("未利用組織の連絡先を出力"),
    "accounts.seeded": _l("テスト用アカウントを生成"),
    "audit.exported": _l("監査ログを出力"),
    "agent_shift.on": _l("勤務を開始"),
    "agent_shift.off": _l("勤務を終了"),
    "api.help_request": _l("APIから問い合わせ受付"),
    "api.note": _l("APIから内部メモ"),
    "api.reply": _l("APIから返信"),
    "api.ticket_create": _l("APIからお問い合わせ作成"),
    "api.ticket_update": _l("APIからお問い合わせ更新"),
    "api.token_create": _l("APIトークンを発行"),
    "api.token_revoke": _l("APIトークンを失効"),
    "api.webhook_create": _l("Webhookを登録"),
    "api.webhook_enable": _l("Webhookを有効化"),
    "api.webhook_disable": _l("Webhookを停止"),
    "assignment_rule.created": _l("振り分けルールを作成"),
    "assignment_rule.updated": _l("振り分けルールを変更"),
    "assignment_rule.enabled": _l("振り分けルールを有効化"),
    "assignment_rule.disabled": _l("振り分けルールを停止"),
    "automation_rule.created": _l("自動ルールを作成"),
    "automation_rule.updated": _l("自動ルールを変更"),
    "automation_rule.enabled": _l("自動ルールを有効化"),
    "automation_rule.disabled": _l("自動ルールを停止"),
    "automation_rule.moved": _l("自動ルールの順序を変更"),
    "automation_rule.deleted": _l("自動ルールを削除"),
    "automation.fired": _l("自動ルールを実行"),
    "attachment.added": _l("添付ファイルを追加"),
    "backup.created": _l("バックアップを作成"),
    "backup.restored": _l("バックアップから復元"),
    "contact.created_from_call": _l("電話から連絡先を登録"),
    "contact.created_from_mail": _l("メールから連絡先を登録"),
    "mail.import_failed": _l("受信メールの取り込みに失敗"),
    "demo.loaded": _l("デモデータを読み込み"),
    "insights.groups_refreshed": _l("繰り返し発生グループを再計算"),
    "login.failed": _l("ログイン失敗"),
    "login.refused": _l("ログイン拒否"),
    "login.succeeded": _l("ログイン成功"),
    "login.twofactor": _l("2段階認証に成功"),
    "login.twofactor_failed": _l("2段階認証に失敗"),
    "login.sso_succeeded": _l("シングルサインオンでログイン"),
    "login.sso_refused": _l("シングルサインオンを拒否"),
    "user.identity_linked": _l("IDプロバイダーのアカウントを紐付け"),
    "user.identity_unlinked": _l("IDプロバイダーのアカウントの紐付けを解除"),
    "security.twofactor_enabled": _l("2段階認証を設定"),
    "security.twofactor_disabled": _l("2段階認証を解除"),
    "security.twofactor_reset": _l("2段階認証をリセット"),
    "security.twofactor_policy": _l("2段階認証の方針を変更"),
    "security.recovery_codes_regenerated": _l("復旧コードを再発行"),
    "security.recovery_code_used": _l("復旧コードを使用"),
    "macro.created": _l("定型文を作成"),
    "macro.updated": _l("定型文を変更"),
    "macro.retired": _l("定型文を廃止"),
    "manual.create": _l("マニュアルを作成"),
    "manual.update": _l("マニュアルを更新"),
    "manual.deactivate": _l("マニュアルを非公開化"),
    "manual.draft_create": _l("マニュアルの下書きを作成"),
    "manual.draft_save": _l("マニュアルの下書きを保存"),
    "manual.draft_discard": _l("マニュアルの下書きを破棄"),
    "manual.publish": _l("マニュアルを公開"),
    "manual.feedback": _l("マニュアルへの評価"),
    "notify.retry": _l("送信を再試行"),
    "organisation.created": _l("組織を登録"),
    "privacy.anonymised": _l("個人情報を匿名化"),
    "privacy.exported": _l("個人情報を出力"),
    "privacy.retention": _l("保存期間切れの個人情報を削除"),
    "problem.created": _l("課題を作成"),
    "problem.updated": _l("課題を変更"),
    "problem.status": _l("課題の状態を変更"),
    "problem.external_ref": _l("課題の開発管理番号を設定"),
    "problem.reappeared": _l("修正済みの課題が再発"),
    "problem.sent_to_tracker": _l("課題を開発管理へ送付"),
    "problem.ticket_linked": _l("課題にお問い合わせを紐付け"),
    "problem.ticket_unlinked": _l("課題からお問い合わせを外す"),
    "saved_view.saved": _l("保存した検索条件を保存"),
    "saved_view.deleted": _l("保存した検索条件を削除"),
    "sla.closed_day_added": _l("休業日を追加"),
    "sla.closed_day_removed": _l("休業日を削除"),
    "sla.closed_days_imported": _l("休業日を取り込み"),
    "sla.desk_hours": _l("営業時間を変更"),
    "sla.policy_saved": _l("SLAポリシーを保存"),
    "storage.migrated": _l("添付ファイルの保存先を移行"),
    "ticket.auto_assigned": _l("お問い合わせを自動割り当て"),
    "ticket.csat": _l("満足度の回答"),
    "ticket.split": _l("お問い合わせを分割"),
    "custom_field.created": _l("追加項目を作成"),
    "custom_field.updated": _l("追加項目を変更"),
    "custom_field.activated": _l("追加項目を有効化"),
    "custom_field.deactivated": _l("追加項目を無効化"),
    "ticket.phone_call_added": _l("電話の記録を追加"),
    "ticket.phone_intake": _l("電話でお問い合わせ受付"),
    "ticket.portal_submitted": _l("ポータルからお問い合わせ"),
    "ticket.portal_reply": _l("ポータルから返信"),
    "ticket.portal_resolve": _l("ポータルで解決済みに"),
    "ticket.portal_close": _l("ポータルで完了に"),
    "ticket.create_limited": _l("作成件数の上限でお問い合わせを受け付けず"),
    "ticket.time_logged": _l("作業時間を記録"),
    "ticket.viewed": _l("お問い合わせを閲覧"),
    "tickets.bulk_assign": _l("一括で担当者を変更"),
    "tickets.bulk_status": _l("一括で状態を変更"),
    "tickets.bulk_priority": _l("一括で優先度を変更"),
    "tickets.bulk_category": _l("一括で分類を変更"),
    "tickets.bulk_tag": _l("一括でタグを追加"),
    "tickets.bulk_merge": _l("一括で統合"),
    "tickets.imported": _l("お問い合わせを取り込み"),
    "user.admin_granted": _l("管理者権限を付与"),
    "user.created": _l("利用者を登録"),
    "user.updated": _l("利用者情報を変更"),
    "user.disabled": _l("アカウントを無効化"),
    "user.enabled": _l("アカウントを有効化"),
    "user.locked": _l("アカウントをロック"),
    "user.unlocked": _l("ロックを解除"),
    "user.password_changed": _l("パスワードを変更"),
    "user.password_reset": _l("パスワードを再設定"),
    "user.password_reset_requested": _l("パスワード再設定を依頼"),
    "user.sessions_ended": _l("ログイン中の画面をすべてログアウト"),
    "user.viewed": _l("利用者情報を閲覧"),
    "users.imported": _l("利用者を取り込み"),
    "users.import_checked": _l("一括登録のファイルを確認"),
    "users.import_confirmed": _l("一括登録を実行"),
    "users.import_refused_exported": _l("一括登録の取り込めない行を出力"),
}

OBJECT_TYPES = {
    "mail": _l("メール"),
    "user": _l("利用者"), "ticket": _l("お問い合わせ"), "problem": _l("課題"), "organisation": _l("組織"),
    "api_token": _l("APIトークン"), "webhook_subscription": _l("Webhook"), "sla_policy": _l("SLAポリシー"),
    "sla_closed_day": _l("休業日"), "sla_desk_settings": _l("営業時間"), "recurring_run": _l("繰り返し発生の計算"),
    "manual": _l("マニュアル"), "macro": _l("定型文"), "assignment_rule": _l("振り分けルール"),
    "automation_rule": _l("自動ルール"),
    "custom_field": _l("追加項目"), "tickets": _l("お問い合わせ一覧"),
    "attachment": _l("添付ファイル"), "outbox": _l("送信"), "report": _l("月次報告"), "insights": _l("分析"),
    "saved_view": _l("保存した検索条件"), "audit": _l("監査ログ"), "backup": _l("バックアップ"),
    "twofactor_policy": _l("2段階認証の方針"), "database": _l("データベース"),
    "user_import": _l("一括登録"), "import": _l("取り込み"),
}

CSV_HEADER = [_l("日時"), _l("実行者"), _l("氏名"), _l("IPアドレス"), _l("操作"), _l("対象の種類"), _l("対象のID"),
              _l("内容"), _l("操作コード")]

#: detail keys in words
KEYS = {
    "folder": _l("フォルダ"), "uid": _l("メールの番号（UID）"), "message_id": _l("メッセージID"), "sender": _l("差出人"),
    "issuer": _l("IDプロバイダー"), "subject": _l("IDプロバイダーの利用者ID"), "newly_linked": _l("初めての紐付け"),
    "amr": _l("IDプロバイダーでの認証方法"), "acr": _l("IDプロバイダーでの認証レベル"),
    "roles": _l("ロール"), "role": _l("ロール"), "state": _l("状態"), "status": _l("状態"), "reason": _l("理由"),
    "email": _l("メールアドレス"), "name": _l("名前"), "phone": _l("電話番号"), "locale": _l("表示言語"),
    "organisation_id": _l("組織"), "organisation": _l("組織"), "locked_until": _l("ロック期限"),
    "failed_logins": _l("失敗回数"), "fixed_on": _l("修正日"), "title": _l("件名"), "tickets": _l("お問い合わせ件数"),
    "groups": _l("グループ数"), "linked": _l("紐付け数"), "ticket_id": _l("お問い合わせ"), "rows": _l("件数"),
    "filters": _l("条件"), "priority": _l("優先度"), "category": _l("分類"), "channel": _l("受付経路"),
    "day": _l("日付"), "file": _l("ファイル"), "added": _l("追加"), "already_closed": _l("既に休業日"),
    "user": _l("利用者"), "scopes": _l("権限"), "expires_at": _l("有効期限"), "url": _l("送信先"),
    "events": _l("イベント"), "value": _l("値"), "done": _l("実施"), "refused": _l("対象外"), "ref": _l("番号"),
    "minutes": _l("分"), "endpoint": _l("画面"), "result": _l("結果"), "month": _l("月"), "from_group": _l("元のグループ"),
    "first_response": _l("初回応答"), "resolution": _l("解決"), "next_update": _l("次回更新"),
    "assignee_id": _l("担当者"), "after": _l("変更後"), "before": _l("変更前"), "hours": _l("営業時間"),
    "public_holidays": _l("祝日は休業"), "year_end": _l("年末年始は休業"), "created": _l("新規"),
    "updated": _l("更新"), "errors": _l("エラー"), "external_ref": _l("開発管理番号"),
    "prefecture": _l("都道府県"), "kind": _l("種類"), "q": _l("検索語"), "actor": _l("実行者"),
    "action": _l("操作"), "object_type": _l("対象の種類"), "object_id": _l("対象のID"),
    "date_from": _l("開始日"), "date_to": _l("終了日"), "organisations": _l("組織数"), "users": _l("利用者数"),
    "lines": _l("行数"), "unchanged": _l("変更なし"), "failed": _l("取り込めない行"),
    "organisations_created": _l("新しい組織"), "organisations_updated": _l("変更した組織"),
    "organisations_renamed": _l("組織名の変更"), "organisation_renames": _l("組織名の変更（コード・旧・新）"),
    "encoding": _l("文字コード"), "bytes": _l("バイト数"), "sha256": _l("SHA-256"), "import_id": _l("一括登録のID"),
    "via": _l("経路"), "source": _l("ファイル"), "initial_passwords": _l("初期パスワードを発行"),
    # automation rules (helpdesk/automation)
    "rule_id": _l("ルールID"), "rule": _l("ルール"), "trigger": _l("実行のタイミング"), "key": _l("きっかけ"),
    "changes": _l("変更内容"), "conditions": _l("条件"), "actions": _l("操作"), "interval_minutes": _l("実行の間隔（分）"),
    "position": _l("順序"), "active": _l("有効"), "direction": _l("移動"),
}
#: actions written by the read trail (helpdesk/access_audit.py): HTTP plumbing in their detail
_READS = ("access.denied", "export.downloaded")
#: keys whose values are internal plumbing, not for people
_HIDDEN = {"method", "args", "status_code"}
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?")


def action_label(code: str | None) -> str:
    """The name of an action code; an unknown code is made readable from its parts."""
    code = code or ""
    if code in ACTIONS:
        return str(ACTIONS[code])
    head, _sep, tail = code.partition(".")
    if tail == "viewed":
        return _("%(what)sを閲覧", what=object_label(head))
    words = tail.replace("_", " ").replace(".", " ").strip()
    return f"{object_label(head)}: {words}" if words else object_label(head)


def object_label(kind: str | None) -> str:
    if not kind:
        return "—"
    label = OBJECT_TYPES.get(kind)
    return str(label) if label is not None else kind.replace("_", " ")


def action_choices(extra=()) -> list[tuple[str, str]]:
    """(code, name) for the action filter, sorted by name; codes found in the log but unnamed included."""
    codes = set(ACTIONS) | {c for c in extra if c}
    return sorted(((c, action_label(c)) for c in codes), key=lambda p: p[1])


def _vocabulary(key: str) -> dict:
    states = {"invited": _l("招待中"), "activated": _l("利用開始"), "disabled": _l("無効"), "locked": _l("ロック中")}
    reasons = {"unknown": _l("登録のないログインID"), "disabled": _l("無効なアカウント"), "locked": _l("ロック中"),
               "denied": _l("拒否"), "ok": _l("成功"),
               # single sign-on (accounts/oidc.py)
               "not_staff": _l("職員ではない"), "domain": _l("許可されていないドメイン"),
               "email_unverified": _l("メールアドレスが未確認"), "no_email": _l("メールアドレスなし"),
               "identity_conflict": _l("別のIDプロバイダー利用者と紐付け済み"), "state": _l("要求と応答が一致しない"),
               "id_token": _l("IDトークンが正しくない"), "token": _l("トークン発行を拒否された"),
               "provider_error": _l("IDプロバイダーがログインを完了しなかった"),
               "unreachable": _l("IDプロバイダーに接続できない"),
               "sso_required": _l("職員はシングルサインオンのみ"),
               "reauth": _l("IDプロバイダーで認証し直されていない")}
    problem = {"candidate": _l("候補"), "accepted": _l("受理済み"), "sent": _l("開発へ送付済み"),
               "fixed": _l("修正済み"), "verified": _l("効果確認済み")}
    if key in ("roles", "role"):
        return {**USER_ROLE_LABELS, **ROLE_LABELS}
    if key == "state":
        return states
    if key in ("reason", "result"):
        return reasons
    if key == "channel":
        return CHANNEL_LABELS
    if key == "locale":
        return {"ja": _l("日本語"), "en": _l("英語")}
    return {**STATUS_LABELS, **problem, **states}


def value_words(value, key: str = "") -> str:
    """One detail value in words: codes translated, None as "—", times in JST without microseconds."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("はい") if value else _("いいえ")
    if isinstance(value, (list, tuple)):
        return "、".join(value_words(v, key) for v in value) if value else "—"
    if isinstance(value, dict):
        return "、".join(f"{key_label(k)}: {value_words(v, k)}" for k, v in value.items()) or "—"
    text = str(value)
    if _DATETIME.fullmatch(text):
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S")
    if key in ("roles", "role") and " " in text:
        return "、".join(value_words(v, key) for v in text.split())
    label = _vocabulary(key).get(text)
    return str(label) if label is not None else text


def key_label(key: str) -> str:
    label = KEYS.get(key)
    return str(label) if label is not None else key.replace("_", " ")


def _change(key: str, before, after) -> str:
    return _("%(what)sを変更: %(before)s → %(after)s", what=key_label(key),
             before=value_words(before, key), after=value_words(after, key))


def detail_lines(action: str | None, detail) -> list[str]:
    """The detail of an audit row as short sentences ("ロールを変更: agent → supervisor")."""
    if not detail:
        return []
    if not isinstance(detail, dict):
        return [value_words(detail)]
    lines: list[str] = []
    rest = dict(detail)
    if action in _READS or (action or "").endswith(".viewed"):
        result = value_words(rest.get("result"), "result")
        lines.append(f"{key_label('result')}: {result} (HTTP {rest.get('status', '—')})")
        args = rest.get("args") if isinstance(rest.get("args"), dict) else {}
        lines += [f"{key_label(k)}: {v}" for k, v in args.items() if v and v != "…"]
        return lines
    changes = rest.pop("changes", None)
    if isinstance(changes, dict):
        for key, pair in changes.items():
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                lines.append(_change(key, *pair))
            else:
                lines.append(f"{key_label(key)}: {value_words(pair, key)}")
    if "before" in rest or "after" in rest:
        before, after = rest.pop("before", None), rest.pop("after", None)
        if isinstance(before, dict) or isinstance(after, dict):
            before, after = before or {}, after or {}
            for key in list(dict.fromkeys([*before, *after])):
                if before.get(key) != after.get(key):
                    lines.append(_change(key, before.get(key), after.get(key)))
        else:
            key = "status" if (action or "").startswith(("problem.", "ticket")) else "state"
            lines.append(_change(key, before, after))
    for key, value in rest.items():
        if key in _HIDDEN:
            continue
        lines.append(f"{key_label(key)}: {value_words(value, key)}")
    return lines
