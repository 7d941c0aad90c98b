"""A real Dovecot IMAP server for tests and benchmarks: foreground child, generated config, loopback only.

Users desk1…deskN (password PASSWORD) with Maildir homes in a temporary folder; plain IMAP and IMAPS
(self-signed certificate made with openssl; `cert` is the file to trust) on free ports.
"""
from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PASSWORD = "imap-Secret-8841"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.access(p, os.X_OK)), None)


class Dovecot:
    """A Dovecot master in the foreground (-F), killed at the end of the module."""

    def __init__(self, binary: str, users: int = 64):
        self.dir = Path(tempfile.mkdtemp(prefix="hd-imap-"))
        self.dir.chmod(0o755)
        self.plain_port, self.ssl_port = free_port(), free_port()
        self.passwd = self.dir / "passwd"
        self.passwd.write_text("")
        self.cert, key = self.dir / "cert.pem", self.dir / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True)
        root = os.geteuid() == 0
        me = pwd.getpwuid(os.geteuid()).pw_name
        # Dovecot refuses to run its login processes or mail access as root.
        mail_user = pwd.getpwnam("nobody") if root else pwd.getpwuid(os.geteuid())
        self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid
        (self.dir / "run").mkdir()
        self._users = itertools.count(1)
        self._write_users(users)
        self.log = self.dir / "dovecot.log"
        config = f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/run/state
instance_name = hd-imap-{os.getpid()}
protocols = imap
listen = 127.0.0.1
log_path = {self.log}
default_login_user = {"dovenull" if root else me}
default_internal_user = {"dovecot" if root else me}
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.passwd}
}}
userdb {{
  driver = passwd-file
  args = {self.passwd}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.plain_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""
        self.config = self.dir / "dovecot.conf"
        self.config.write_text(config)
        self.proc = subprocess.Popen([binary, "-F", "-c", str(self.config)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                for port in (self.plain_port, self.ssl_port):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    out = self.proc.stdout.read().decode("utf-8", "replace") if self.proc.poll() is not None else ""
                    self.stop()
                    raise RuntimeError(f"dovecot did not start: {out} {self.log_text()}")
                time.sleep(0.1)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _write_users(self, count: int) -> None:
        # All written before start: Dovecot re-reads a passwd-file at most once a second.
        lines = []
        for n in range(1, count + 1):
            home = self.dir / "home" / f"desk{n}"
            home.mkdir(parents=True)
            os.chown(home, self.uid, self.gid)
            lines.append(f"desk{n}:{{PLAIN}}{PASSWORD}:{self.uid}:{self.gid}::{home}::\n")
        os.chown(self.dir / "home", self.uid, self.gid)
        self.passwd.write_text("".join(lines))

    def add_user(self) -> str:
        """A user whose mailbox no test has used yet."""
        return f"desk{next(self._users)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)
