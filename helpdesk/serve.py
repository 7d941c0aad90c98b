"""Serve an already-built app with gunicorn, from inside a command (`helpdesk demo`).

Flask's own CLI refuses `app.run()` inside a command, and the development server is not what people
should meet; gunicorn is already a dependency (production runs `gunicorn wsgi:app`), so the demo
serves through the same server: one worker process with threads, stopped by Ctrl+C (SIGINT) or
SIGTERM like any gunicorn master.
"""
from __future__ import annotations

from flask import Flask
from gunicorn.app.base import BaseApplication


class _Embedded(BaseApplication):
    def __init__(self, app: Flask, options: dict):
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app


def serve(app: Flask, host: str, port: int, *, workers: int = 1, threads: int = 8) -> None:
    """Serve `app` on host:port until interrupted (blocks)."""
    from helpdesk.extensions import db

    with app.app_context():
        db.engine.dispose()  # no pooled connection may cross the fork into the worker
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 120,
        "graceful_timeout": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "helpdesk-demo",
    }
    _Embedded(app, options).run()
