"""`helpdesk backup` / `helpdesk restore`: the database, every attachment and a manifest with checksums.

A backup is a folder:

    manifest.json          what is in it: database kind and Alembic revision, row counts, every file's sha256
    database.dump          PostgreSQL: `pg_dump --format=custom` (restored with `pg_restore`)
    database.sqlite3       SQLite (the embedded default): a copy made with SQLite's online backup API
    attachments/ab/ab…     every attachment the database refers to, under its stored name

PostgreSQL: the row counts and the attachment list are read in the very snapshot that `pg_dump` dumps
(`pg_export_snapshot()` + `pg_dump --snapshot`), so the manifest describes exactly the dump even while
the desk keeps working. SQLite: counts and list are read from the copy itself.

A restore checks every checksum before touching anything, refuses a database that already has tables
(restore into an empty one), loads the database, writes the attachments back through the storage and
checks the restored counts against the manifest.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

FORMAT = "helpdesk-backup/1"
MANIFEST = "manifest.json"
PG_FILE = "database.dump"
SQLITE_FILE = "database.sqlite3"
#: Tables whose row counts go into the manifest and are checked after a restore.
COUNTED = ("tickets", "ticket_events", "comments", "attachments", "users", "organisations", "audit_log")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _libpq(url) -> tuple[list[str], dict]:
    """pg_dump/pg_restore connection arguments and environment (the password never on the command line)."""
    url = make_url(str(url)) if not hasattr(url, "drivername") else url
    args = []
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    return args + ["--dbname", url.database or ""], env


def _run(cmd: list[str], env: dict) -> None:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise BackupError(f"{cmd[0]} was not found: install the PostgreSQL client (e.g. apt-get install "
                          "postgresql-client) of the server's major version.") from exc
    if done.returncode != 0:
        raise BackupError(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _counts(conn) -> dict[str, int]:
    return {table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()) for table in COUNTED}


def _revision(conn) -> str | None:
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        return None


def _attachment_rows(conn) -> list[dict]:
    rows = conn.execute(text("SELECT id, stored_name, sha256, size FROM attachments ORDER BY id"))
    return [{"id": r[0], "stored_name": r[1], "sha256": r[2], "size": r[3]} for r in rows]


def _sqlite_path(url) -> str:
    database = make_url(str(url)).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return database


def backup(engine, storage, out_dir: str | Path, *, now: dt.datetime | None = None) -> dict:
    """Write a backup of `engine`'s database and the attachments in `storage` into `out_dir` (new or empty)."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: give a new folder for each backup.")
    out.mkdir(parents=True, exist_ok=True)
    kind = engine.dialect.name
    if kind == "postgresql":
        dump = out / PG_FILE
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            args, env = _libpq(engine.url)
            # The snapshot stays valid while this transaction is open: dump, counts and list agree.
            _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                  "--file", str(dump)] + args, env)
            counts, revision, rows = _counts(conn), _revision(conn), _attachment_rows(conn)
            conn.exec_driver_sql("COMMIT")
        db_file = PG_FILE
    elif kind == "sqlite":
        source = sqlite3.connect(_sqlite_path(engine.url))
        target = sqlite3.connect(out / SQLITE_FILE)
        try:
            source.backup(target)  # online: readers and writers of the live file carry on
        finally:
            target.close()
            source.close()
        from sqlalchemy import create_engine

        copy = create_engine(f"sqlite:///{out / SQLITE_FILE}")
        with copy.connect() as conn:
            counts, revision, rows = _counts(conn), _revision(conn), _attachment_rows(conn)
        copy.dispose()
        db_file = SQLITE_FILE
    else:
        raise BackupError(f"no backup method for a {kind} database")

    files, missing = [], []
    for row in rows:
        data = storage.read(row["stored_name"])
        if data is None:
            missing.append(row)
            continue
        rel = f"attachments/{row['stored_name'][:2]}/{row['stored_name']}"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files.append({"id": row["id"], "stored_name": row["stored_name"], "path": rel, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest(), "recorded_sha256": row["sha256"]})
    manifest = {
        "format": FORMAT,
        "created_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        "database": {"kind": kind, "file": db_file, "sha256": sha256_file(out / db_file),
                     "size": (out / db_file).stat().st_size, "alembic_revision": revision},
        "counts": counts,
        "attachments": files,
        "missing_attachments": missing,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


def load_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{path} is missing: not a helpdesk backup folder.")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


def verify(folder: str | Path) -> dict:
    """Check every checksum of a backup folder; BackupError names the first file that differs."""
    folder = Path(folder)
    manifest = load_manifest(folder)
    database = manifest["database"]
    for rel, expected in [(database["file"], database["sha256"])] + [
            (f["path"], f["sha256"]) for f in manifest["attachments"]]:
        path = folder / rel
        if ".." in Path(rel).parts or not path.is_file():
            raise BackupError(f"{rel} is missing from the backup.")
        if sha256_file(path) != expected:
            raise BackupError(f"{rel} does not match its checksum: the backup is damaged.")
    return manifest


def _tables(engine) -> list[str]:
    from sqlalchemy import inspect

    return [t for t in inspect(engine).get_table_names() if not t.startswith("sqlite_")]


def restore(engine, storage, folder: str | Path) -> dict:
    """Restore a verified backup into the empty database of `engine` and into `storage`."""
    folder = Path(folder)
    manifest = verify(folder)
    kind = manifest["database"]["kind"]
    if kind != engine.dialect.name:
        raise BackupError(f"this backup is of a {kind} database; the target is {engine.dialect.name}.")
    existing = _tables(engine)
    if existing:
        raise BackupError(f"the target database is not empty ({len(existing)} tables): restore into a new, "
                          "empty database.")
    source = folder / manifest["database"]["file"]
    if kind == "postgresql":
        args, env = _libpq(engine.url)
        _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
             + args + [str(source)], env)
    else:
        engine.dispose()
        src = sqlite3.connect(source)
        dst = sqlite3.connect(_sqlite_path(engine.url))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    engine.dispose()
    for entry in manifest["attachments"]:
        storage.write(entry["stored_name"], (folder / entry["path"]).read_bytes())
    with engine.connect() as conn:
        counts = _counts(conn)
    if counts != manifest["counts"]:
        raise BackupError(f"restored row counts {counts} differ from the manifest {manifest['counts']}")
    for entry in manifest["attachments"]:
        data = storage.read(entry["stored_name"])
        if data is None or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BackupError(f"attachment {entry['stored_name']} was not restored intact")
    return manifest
