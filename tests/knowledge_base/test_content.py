from pathlib import Path

import pytest

from knowledge_base import ContentError, KnowledgeBase, validate

from .conftest import write_article


def _errors_for(root: Path, field: str):
    return [e for e in validate(root) if e.field == field]


def test_valid_tree_has_no_errors(manuals_dir):
    assert validate(manuals_dir) == []
    kb = KnowledgeBase.load(manuals_dir)
    art = kb.get("password-reset", "ja")
    assert art.role == "common" and art.version == 1 and art.updated.isoformat() == "2026-11-01"
    assert art.headings[0] == "パスワードを忘れたときの再設定"
    assert len(art.checksum) == 64


def test_missing_field_names_file_and_field(manuals_dir):
    path = manuals_dir / "common" / "password-reset.ja.md"
    path.write_text(path.read_text(encoding="utf-8").replace("version: 1\n", ""), encoding="utf-8")
    errs = _errors_for(manuals_dir, "version")
    assert len(errs) == 1
    assert errs[0].path == str(path) and "missing" in errs[0].message
    assert "password-reset.ja.md: version" in str(errs[0])
    with pytest.raises(ContentError) as exc:
        KnowledgeBase.load(manuals_dir)
    assert exc.value.field == "version"


def test_bad_role_and_role_folder_mismatch(manuals_dir):
    write_article(manuals_dir, "clinic", "odd", "ja", "t", "本文です。", ["x"]).write_text(
        "---\nslug: odd\nrole: hospital\ntitle: t\nlang: ja\ntags: [x]\nversion: 1\nupdated: 2026-11-01\n---\n本文\n",
        encoding="utf-8")
    errs = _errors_for(manuals_dir, "role")
    assert any("'hospital' is not one of" in e.message for e in errs)
    write_article(manuals_dir, "clinic", "other", "ja", "t", "本文です。", ["x"], role_override=None)
    p = manuals_dir / "clinic" / "other.ja.md"
    p.write_text(p.read_text(encoding="utf-8").replace("role: clinic", "role: wholesaler"), encoding="utf-8")
    assert any("does not match the folder 'clinic'" in e.message and e.path == str(p) for e in _errors_for(manuals_dir, "role"))


def test_bad_date(manuals_dir):
    p = manuals_dir / "clinic" / "desired-quantity.en.md"
    p.write_text(p.read_text(encoding="utf-8").replace("updated: 2026-11-01", "updated: 2026-13-45"), encoding="utf-8")
    errs = _errors_for(manuals_dir, "updated")
    assert len(errs) == 1 and errs[0].path == str(p) and "2026-13-45" in errs[0].message


def test_slug_and_lang_mismatch(manuals_dir):
    p = manuals_dir / "clinic" / "desired-quantity.en.md"
    p.write_text(p.read_text(encoding="utf-8").replace("slug: desired-quantity", "slug: desired-amount")
                 .replace("lang: en", "lang: ja"), encoding="utf-8")
    errs = validate(manuals_dir)
    assert any(e.field == "slug" and "does not match the file name" in e.message for e in errs)
    assert any(e.field == "lang" and "does not match the file suffix" in e.message for e in errs)


def test_missing_translation_and_unknown_related(manuals_dir):
    (manuals_dir / "wholesaler" / "delivery-completion.en.md").unlink()
    write_article(manuals_dir, "common", "faq", "ja", "よくある質問", "本文です。", ["faq"], related=["no-such-slug"])
    write_article(manuals_dir, "common", "faq", "en", "FAQ", "Body text.", ["faq"], related=["password-reset"])
    errs = validate(manuals_dir)
    assert any(e.field == "lang" and "delivery-completion.en.md does not exist" in e.message for e in errs)
    assert [e.message for e in errs if e.field == "related"] == ["'no-such-slug' is not the slug of any article"]


def test_no_front_matter_and_bad_yaml(manuals_dir):
    (manuals_dir / "common" / "plain.ja.md").write_text("# no front matter\n", encoding="utf-8")
    (manuals_dir / "common" / "broken.ja.md").write_text("---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8")
    errs = {Path(e.path).name: e for e in validate(manuals_dir) if e.field == "front matter"}
    assert "missing" in errs["plain.ja.md"].message
    assert "not valid YAML" in errs["broken.ja.md"].message


def test_bad_types_collected_together(manuals_dir):
    p = manuals_dir / "common" / "account-locked.ja.md"
    text = p.read_text(encoding="utf-8").replace("version: 1", "version: 0").replace("lang: ja", "lang: fr")
    p.write_text(text.replace("tags: ['ロック', 'ログイン']", "tags: ロック"), encoding="utf-8")
    fields = {e.field for e in validate(manuals_dir) if e.path == str(p)}
    assert {"version", "lang", "tags"} <= fields
