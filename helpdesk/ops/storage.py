"""Where attachment bytes live: a local folder (the embedded default) or an S3-compatible object store.

Every backend stores a file under its random `stored_name` (32 hex digits) and offers the same four
calls: `write(name, data)`, `read(name) -> bytes | None`, `exists(name)`, `delete(name)`, `names()`. Chosen by
configuration (`ATTACHMENT_STORAGE=local|s3`); `storage_for(app)` builds the one the app uses.
"""
from __future__ import annotations

import os
import re
import secrets
from typing import Iterator
from helpdesk.tickets.models import Attachment

_NAME = re.compile(r"[0-9a-f]{32}")


def check_name(stored_name: str) -> str:
    if not _NAME.fullmatch(stored_name or ""):
        raise ValueError("bad stored name")
    return stored_name


class LocalStorage:
    """Files under `folder/ab/abcdef…` (two-character fan-out), written atomically."""

    kind = "local"

    def __init__(self, folder: str):
        self.folder = folder

    def path(self, stored_name: str) -> str:
        check_name(stored_name)
        return os.path.join(self.folder, stored_name[:2], stored_name)

    def write(self, stored_name: str, data: bytes) -> None:
        path = self.path(stored_name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{secrets.token_hex(4)}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def read(self, stored_name: str) -> bytes | None:
        try:
            with open(self.path(stored_name), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def exists(self, stored_name: str) -> bool:
        return os.path.isfile(self.path(stored_name))

    def delete(self, stored_name: str) -> bool:
        try:
            os.remove(self.path(stored_name))
            return True
        except FileNotFoundError:
            return False

    def names(self) -> Iterator[str]:
        if not os.path.isdir(self.folder):
            return
        for sub in sorted(os.listdir(self.folder)):
            folder = os.path.join(self.folder, sub)
            if len(sub) == 2 and os.path.isdir(folder):
                for name in sorted(os.listdir(folder)):
                    if _NAME.fullmatch(name):
                        yield name


class StorageUnavailable(OSError):
    """The object store refused or could not be reached; an OSError, like a full or read-only disk."""


class S3Storage:
    """Objects `prefix + ab/abcdef…` in one bucket of an S3-compatible store (AWS S3, MinIO, Ceph…).

    Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, instance
    role…); `endpoint_url` points at a non-AWS store. One client per process (thread-safe).
    """

    kind = "s3"

    def __init__(self, bucket: str, *, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, client=None):
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None,
                                  config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                                connect_timeout=5, read_timeout=30))
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def key(self, stored_name: str) -> str:
        check_name(stored_name)
        return f"{self.prefix}{stored_name[:2]}/{stored_name}"

    def _call(self, method: str, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(kwargs.get("Key")) from exc
            raise StorageUnavailable(f"object store: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"object store: {type(exc).__name__}: {exc}") from exc

    def write(self, stored_name: str, data: bytes) -> None:
        self._call("put_object", Key=self.key(stored_name), Body=data, ContentType="application/octet-stream")

    def read(self, stored_name: str) -> bytes | None:
        try:
            return self._call("get_object", Key=self.key(stored_name))["Body"].read()
        except FileNotFoundError:
            return None

    def exists(self, stored_name: str) -> bool:
        try:
            self._call("head_object", Key=self.key(stored_name))
            return True
        except FileNotFoundError:
            return False

    def delete(self, stored_name: str) -> bool:
        self._call("delete_object", Key=self.key(stored_name))
        return True

    def names(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", ()):
                name = item["Key"].rsplit("/", 1)[-1]
                if _NAME.fullmatch(name):
                    yield name


def _setting(app, name: str, default: str | None = None) -> str | None:
    return app.config.get(name) or os.environ.get(name) or default


def build_storage(app, kind: str | None = None):
    """A new storage of `kind` (default: ATTACHMENT_STORAGE, `local` unless set) from the app's settings."""
    kind = kind or _setting(app, "ATTACHMENT_STORAGE", "local")
    if kind == "local":
        return LocalStorage(app.config["UPLOAD_FOLDER"])
    if kind == "s3":
        bucket = _setting(app, "S3_BUCKET")
        if not bucket:
            raise RuntimeError("ATTACHMENT_STORAGE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL for a non-AWS store).")
        return S3Storage(bucket, prefix=_setting(app, "S3_PREFIX", "attachments/"),
                         endpoint_url=_setting(app, "S3_ENDPOINT_URL"), region=_setting(app, "S3_REGION"))
    raise RuntimeError(f"ATTACHMENT_STORAGE must be 'local' or 's3', not {kind!r}")


def storage_for(app):
    """The attachment storage `app` uses (built once per app and setting)."""
    kind = _setting(app, "ATTACHMENT_STORAGE", "local")
    cached = app.extensions.get("hd_storage")
    if cached is None or cached[0] != (kind, app.config.get("UPLOAD_FOLDER"), _setting(app, "S3_BUCKET")):
        cached = ((kind, app.config.get("UPLOAD_FOLDER"), _setting(app, "S3_BUCKET")), build_storage(app, kind))
        app.extensions["hd_storage"] = cached
    return cached[1]


def migrate_storage(session, source, target, *, dry_run: bool = False, progress=None, batch: int = 500) -> dict:
    """Copy the files of every attachment row from `source` to `target`, verifying each sha256."""
    import hashlib

    from sqlalchemy import select

    result = {"copied": 0, "skipped": 0, "missing": 0, "mismatched": 0}
    last_id = 0
    while True:
        rows = session.execute(select(Attachment.id, Attachment.stored_name, Attachment.sha256)
                               .where(Attachment.id > last_id).order_by(Attachment.id).limit(batch)).all()
        if not rows:
            break
        last_id = rows[-1][0]
        for _id, name, sha in rows:
            if target.exists(name):
                result["skipped"] += 1
                continue
            data = source.read(name)
            if data is None:
                result["missing"] += 1
                continue
            if sha and hashlib.sha256(data).hexdigest() != sha:
                result["mismatched"] += 1
                continue
            if not dry_run:
                target.write(name, data)
            result["copied"] += 1
        if progress:
            progress(f"… up to attachment {last_id}: {result}")
    session.rollback()
    return result


def current_storage():
    from flask import current_app

    return storage_for(current_app)
