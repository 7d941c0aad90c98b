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


def storage_for(app) -> LocalStorage:
    """The attachment storage configured for `app`."""
    return LocalStorage(app.config["UPLOAD_FOLDER"])
