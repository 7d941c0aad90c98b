"""Framework-free knowledge base over `manuals/`: load, validate, search and suggest (Japanese-aware).

    from knowledge_base import KnowledgeBase, ContentError, validate, Hit
    kb = KnowledgeBase.load("manuals")
    kb.suggest("パスワードを忘れてログインできません", role="clinic")
"""
from knowledge_base.content import Article, ContentError, load_directory, parse_article, validate
from knowledge_base.kb import Hit, KnowledgeBase, directory_fingerprint
from knowledge_base.text import detect_lang, normalize

__all__ = ["Article", "ContentError", "Hit", "KnowledgeBase", "detect_lang", "directory_fingerprint",
           "load_directory", "normalize", "parse_article", "validate"]
