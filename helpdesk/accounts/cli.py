"""`helpdesk import-users FILE.csv`: bulk onboarding of users and organisations."""
from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

MAX_ERRORS_SHOWN = 200


@click.command("import-users")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="check every line and count the changes, write nothing")
@click.option("--initial-passwords", "passwords_out", type=click.Path(dir_okay=False, writable=True),
              help="generate initial passwords for new users and write them to this CSV (owner-readable only); "
                   "slow: argon2 hashing")
@click.option("--errors", "errors_out", type=click.Path(dir_okay=False, writable=True),
              help="also write every refused line (line,reason) to this CSV")
@with_appcontext
def import_users_cli(path: str, dry_run: bool, passwords_out: str | None, errors_out: str | None) -> None:
    """Import users from CSV (email,name,org_code,org_name,org_kind,prefecture,roles); idempotent.

    UTF-8 (with or without BOM) or Shift_JIS/cp932. New users are invited without a password (they
    activate through a reset link) unless --initial-passwords is given. Exit code 1 when a line failed.
    """
    from helpdesk.accounts.importer import ImportFileError, decode, import_users, write_passwords
    from helpdesk.audit import Actor
    from helpdesk.cli import ensure_db
    from helpdesk.extensions import db

    ensure_db()
    started = time.perf_counter()
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        text, encoding = decode(data)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"文字コード / encoding: {encoding}")
    estimate = max(1, text.count("\n"))
    del text
    try:
        # steps: one per line read, two per new user, one per changed user (importer.import_users)
        with click.progressbar(length=estimate * 3, label="import", file=click.get_text_stream("stderr"),
                               show_pos=False) as bar:
            result = import_users(db.session, data, actor=Actor.system("cli:import-users"), dry_run=dry_run,
                                  initial_passwords=bool(passwords_out), source=path, progress=bar.update)
            bar.update(estimate * 3)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None
    elapsed = time.perf_counter() - started

    for line, message in result.errors[:MAX_ERRORS_SHOWN]:
        click.echo(f"{path}:{line}: {message}", err=True)
    if len(result.errors) > MAX_ERRORS_SHOWN:
        click.echo(f"... さらに {len(result.errors) - MAX_ERRORS_SHOWN} 件のエラー（--errors FILE で全件を出力）",
                   err=True)
    if errors_out:
        import csv

        from helpdesk.common import csv_safe

        with open(errors_out, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["line", "reason"])
            writer.writerows((line, csv_safe(message)) for line, message in result.errors)
    if passwords_out and not dry_run:
        write_passwords(passwords_out, result)
        click.echo(f"initial passwords: {len(result.passwords)} written to {passwords_out}")

    prefix = "[dry run] " if dry_run else ""
    for rename in result.org_renames:  # an organisation rename is never silent
        click.echo(f"{prefix}組織名の変更 / organisation renamed: {rename['code']}: {rename['old']} → {rename['new']} "
                   f"({rename['users']} users)")
    click.echo(f"{prefix}lines: {result.lines}, created: {result.created}, updated: {result.updated}, "
               f"unchanged: {result.unchanged}, failed: {result.failed}, "
               f"organisations created: {result.orgs_created}, organisations updated: {result.orgs_updated} "
               f"({elapsed:.1f} s)")
    if result.failed:
        raise SystemExit(1)


@click.command("create-admin")
@click.argument("email")
@click.option("--name", default="管理者", show_default=True, help="display name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input (one line)")
@with_appcontext
def create_admin_cli(email: str, name: str, password_stdin: bool) -> None:
    """Create the first administrator (or give an existing account the admin role and a new password).

    The password is asked twice (hidden) unless --password-stdin is given, and must pass the same
    policy as the web forms. For a fresh production database: `helpdesk db upgrade` first.
    """
    import sys

    from helpdesk.accounts.passwords import policy_errors
    from helpdesk.accounts.service import AccountError, create_user, find_user_by_email, set_password
    from helpdesk.audit import Actor
    from helpdesk.extensions import db

    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise click.ClickException("メールアドレスの形式が正しくありません / not a valid e-mail address: "
                                   f"{email!r}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("パスワード / password", hide_input=True, confirmation_prompt=(
            "もう一度 / repeat", "2回の入力が一致しません / the two entries differ"))
    problems = policy_errors(password, email)
    if problems:
        raise click.ClickException("このパスワードは使えません / password refused: " + " ".join(str(p) for p in problems))
    actor = Actor.system("cli:create-admin")
    existing = find_user_by_email(db.session, email)
    try:
        if existing is None:
            user = create_user(db.session, email=email, name=name, organisation_id=None, roles="admin",
                               password=password, actor=actor, must_change_password=False, commit=False)
            user.state = "activated"
            verb = "created"
        else:
            user = existing
            roles = set((user.roles or "").split())
            if "admin" not in roles:
                user.roles = " ".join(sorted(roles | {"admin"}))
            set_password(db.session, user.id, password, actor)
            verb = "updated"
        from helpdesk import audit

        audit.record(db.session, actor, "user.admin_granted", "user", user.id, {"email": email, "via": "cli"})
        db.session.commit()
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"administrator {verb}: {email}")


@click.command("reset-2fa")
@click.argument("email")
@with_appcontext
def reset_twofactor_cli(email: str) -> None:
    """Remove a user's two-factor secret and recovery codes (lost phone): they enrol again at next sign-in."""
    from sqlalchemy import func, select

    from helpdesk.accounts import twofactor
    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor
    from helpdesk.extensions import db

    user = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no account with the login {email}")
    twofactor.reset(db.session, user, Actor.system("cli"))
    click.echo(f"two-factor sign-in reset: {user.email}")


COMMANDS = [import_users_cli, create_admin_cli, reset_twofactor_cli]
