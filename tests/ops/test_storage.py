"""Attachment storage: the local folder and an S3-compatible store — a real moto server started as its own
process on a free port (not an in-process mock) — plus the migration command between them."""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from helpdesk.audit import Actor

PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 40


def _free_port() -> int:
    for port in range(5740, 5790):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 5740-5789")


@pytest.fixture(scope="module")
def s3_server():
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")
    port = _free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def bucket(s3_server):
    import boto3

    name = f"hd-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="ap-northeast-1").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    return name


@pytest.fixture
def s3_app(app, s3_server, bucket, monkeypatch):
    """The test app with ATTACHMENT_STORAGE=s3 on the moto server."""
    monkeypatch.setitem(app.config, "ATTACHMENT_STORAGE", "s3")
    monkeypatch.setitem(app.config, "S3_BUCKET", bucket)
    monkeypatch.setitem(app.config, "S3_ENDPOINT_URL", s3_server)
    monkeypatch.setitem(app.config, "S3_REGION", "ap-northeast-1")
    yield app
    app.extensions.pop("hd_storage", None)


def test_s3_storage_round_trip(s3_app):
    from helpdesk.ops.storage import S3Storage, storage_for

    storage = storage_for(s3_app)
    assert isinstance(storage, S3Storage)
    name = uuid.uuid4().hex
    assert storage.read(name) is None and not storage.exists(name)
    storage.write(name, PNG)
    assert storage.read(name) == PNG and storage.exists(name) and name in set(storage.names())
    storage.delete(name)
    assert storage.read(name) is None


def test_upload_download_and_rollback_on_s3(s3_app, db, client, login, make_ticket, agent):
    from helpdesk.ops.storage import storage_for
    from helpdesk.tickets import attachments
    from helpdesk.tickets.models import Attachment

    ticket = make_ticket()
    row = attachments.save_bytes(db.session, ticket, "画面.png", PNG, Actor(agent.id, agent.email), commit=True)
    storage = storage_for(s3_app)
    assert storage.read(row.stored_name) == PNG
    assert not os.path.exists(attachments.stored_path(row.stored_name))  # not on this node's disk
    login(agent)
    response = client.get(f"/attachments/{row.id}")
    assert response.status_code == 200 and response.data == PNG

    # A rolled-back change leaves no object behind (as with the local folder).
    second = attachments.save_bytes(db.session, ticket, "b.png", PNG + b"x", Actor(agent.id, agent.email))
    name = second.stored_name
    assert storage.exists(name)
    db.session.rollback()
    assert not storage.exists(name)
    assert db.session.scalar(select(Attachment).where(Attachment.stored_name == name)) is None


def test_unreachable_object_store_is_a_storage_error(app, db, make_ticket, agent, monkeypatch):
    from helpdesk.tickets import attachments

    monkeypatch.setitem(app.config, "ATTACHMENT_STORAGE", "s3")
    monkeypatch.setitem(app.config, "S3_BUCKET", "hd-none")
    monkeypatch.setitem(app.config, "S3_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens
    try:
        ticket = make_ticket()
        with pytest.raises(attachments.StorageError):
            attachments.save_bytes(db.session, ticket, "a.png", PNG, Actor(agent.id, agent.email))
        db.session.rollback()
    finally:
        app.extensions.pop("hd_storage", None)


def test_migrate_local_files_to_s3(app, db, s3_server, bucket, make_ticket, agent, monkeypatch):
    from helpdesk.ops.storage import build_storage
    from helpdesk.tickets import attachments

    ticket = make_ticket()
    rows = [attachments.save_bytes(db.session, ticket, f"{n}.png", PNG + bytes([n]), Actor(agent.id, agent.email),
                                   commit=True) for n in range(3)]  # local folder (the default)
    monkeypatch.setitem(app.config, "S3_BUCKET", bucket)
    monkeypatch.setitem(app.config, "S3_ENDPOINT_URL", s3_server)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["storage", "migrate", "--to", "s3", "--dry-run"])
    assert dry.exit_code == 0 and "would copy 3" in dry.output, dry.output
    s3 = build_storage(app, "s3")
    assert not any(s3.exists(r.stored_name) for r in rows)
    result = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert result.exit_code == 0 and "copied 3" in result.output, result.output
    for r in rows:
        assert hashlib.sha256(s3.read(r.stored_name)).hexdigest() == r.sha256
    again = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert "copied 0, already there 3" in again.output
