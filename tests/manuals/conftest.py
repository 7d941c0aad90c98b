"""Manual pages tests: the app's MANUALS_DIR points at a small tree written per test."""
from __future__ import annotations

import pytest

from helpdesk.manuals import service
from tests.knowledge_base.conftest import ARTICLES, write_article


@pytest.fixture
def manuals_dir(tmp_path, app):
    root = tmp_path / "manuals"
    for slug, (role, ja_t, ja_b, en_t, en_b, tags) in ARTICLES.items():
        related = ["account-locked"] if slug == "password-reset" else None
        write_article(root, role, slug, "ja", ja_t, ja_b, tags, related=related, category="password"
                      if slug == "password-reset" else None)
        write_article(root, role, slug, "en", en_t, en_b, tags, related=related)
    saved = app.config["MANUALS_DIR"]
    app.config["MANUALS_DIR"] = str(root)
    service.invalidate_kb()
    yield root
    app.config["MANUALS_DIR"] = saved
    service.invalidate_kb()
