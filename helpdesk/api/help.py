"""The in-app Help button: the supported system's context becomes a ticket plus suggested articles."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import select

from helpdesk import audit
from helpdesk.accounts.models import Organisation, User
from helpdesk.api import schemas as S
from helpdesk.api.framework import ApiError
from helpdesk.audit import Actor
from helpdesk.tickets import service as tickets

#: Order of the structured fields on the ticket page (key, Japanese label).
SUGGESTIONS = 3


def _subject(payload: S.HelpRequestCreate) -> str:
    first_line = payload.message.strip().splitlines()[0] if payload.message.strip() else ""
    head = " ".join(p for p in (payload.screen_id, payload.error_code) if p)
    subject = f"【ヘルプ】{head}: {first_line}" if head else f"【ヘルプ】{first_line}"
    return subject[:300]


def file_help_request(session, user: User, payload: S.HelpRequestCreate, actor: Actor, *, kb,
                      ticket_url: Callable, article_url: Callable) -> S.HelpRequestResult:
    """Create the ticket (not committed: the API layer commits once) and pick the suggestions."""
    login_id = payload.login_id.lower() if payload.login_id else None
    requester: User | None = None
    org: Organisation | None = None
    if user.is_staff:
        # An integration account files on behalf of any VDS user.
        if login_id:
            requester = session.scalar(select(User).where(User.email == login_id))
        if payload.organisation_code:
            org = session.scalar(select(Organisation).where(Organisation.code == payload.organisation_code))
        if requester is not None and requester.organisation is not None:
            org = requester.organisation
        if requester is None and org is None:
            errors = {}
            if payload.organisation_code:
                errors["organisation_code"] = [f"組織コード「{payload.organisation_code}」が見つかりません。"]
            else:
                errors["organisation_code"] = ["ログインIDが登録されていないため、組織コードが必要です。"]
            if login_id:
                errors["login_id"] = [f"ログインID「{login_id}」は登録されていません。"]
            raise ApiError(422, "unknown-reference", "依頼者を特定できません。ログインIDか組織コードを確認してください。",
                           errors)
    else:
        # A requester's own token may only file for itself.
        errors = {}
        if login_id and login_id != user.email:
            errors["login_id"] = ["このトークンでは自分のログインIDでしか送信できません。"]
        own_code = user.organisation.code if user.organisation else None
        if payload.organisation_code and payload.organisation_code != own_code:
            errors["organisation_code"] = ["このトークンでは自分の組織でしか送信できません。"]
        if errors:
            raise ApiError(403, "forbidden-on-behalf", "他の利用者・組織の代わりには送信できません。", errors)
        requester, org = user, user.organisation
    role = org.kind if org is not None else None
    query = "\n".join(p for p in (payload.message, payload.error_code, payload.screen_id) if p)
    hits = kb.suggest(query, role=role, k=SUGGESTIONS, lang=payload.lang) if kb is not None else []
    category = None
    if hits:
        top = kb.get(hits[0].slug, hits[0].lang)
        if top is not None and top.category in S.CATEGORY_CODES:
            category = top.category
    context = {"source": "help_button", "login_id": payload.login_id, "known_user": requester is not None,
               "organisation_code": payload.organisation_code or (org.code if org else None),
               "screen_id": payload.screen_id, "error_code": payload.error_code, "browser": payload.browser,
               "page_url": payload.page_url, "suggested": [h.slug for h in hits]}
    context = {k: v for k, v in context.items() if v is not None}
    ticket = tickets.create_ticket(session, actor=actor, subject=_subject(payload), body=payload.message,
                                   channel="api", requester_id=requester.id if requester else None,
                                   organisation_id=org.id if org else None, category=category, context=context,
                                   tags=["help-button"], commit=False)
    audit.record(session, actor, "api.help_request", "ticket", ticket.ref,
                 {"login_id": payload.login_id, "organisation": org.code if org else None,
                  "screen_id": payload.screen_id, "error_code": payload.error_code})
    suggestions = [S.ArticleHit(slug=h.slug, title=h.title, role=h.role, lang=h.lang, score=round(float(h.score), 4),
                                excerpt=h.excerpt, url=article_url(h.role, h.slug, h.lang)) for h in hits]
    return S.HelpRequestResult(ticket=S.HelpTicket(ref=ticket.ref, status=ticket.status, url=ticket_url(ticket)),
                               suggestions=suggestions)

