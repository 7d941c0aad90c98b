"""The in-app Help button: the supported system's context becomes a ticket plus suggested articles."""
from __future__ import annotations

from typing import Callable

from helpdesk import audit
from helpdesk.accounts.models import User
from helpdesk.api import schemas as S
from helpdesk.api.framework import ApiError, unknown_reference
from helpdesk.audit import Actor
from helpdesk.tickets import requesters
from helpdesk.tickets import service as tickets

#: Order of the structured fields on the ticket page (key, Japanese label).
SUGGESTIONS = 3
#: What a requester's token is told about a login id / organisation that is not its own.
_ON_BEHALF = {"login_id": "このトークンでは自分のログインIDでしか送信できません。",
              "organisation_code": "このトークンでは自分の組織でしか送信できません。"}


def _subject(payload: S.HelpRequestCreate) -> str:
    first_line = payload.message.strip().splitlines()[0] if payload.message.strip() else ""
    head = " ".join(p for p in (payload.screen_id, payload.error_code) if p)
    subject = f"【ヘルプ】{head}: {first_line}" if head else f"【ヘルプ】{first_line}"
    return subject[:300]


def file_help_request(session, user: User, payload: S.HelpRequestCreate, actor: Actor, *, kb,
                      ticket_url: Callable, article_url: Callable) -> S.HelpRequestResult:
    """Create the ticket (not committed: the API layer commits once) and pick the suggestions."""
    try:
        requester, org = requesters.resolve_caller(session, user, login_id=payload.login_id,
                                                   organisation_code=payload.organisation_code)
    except requesters.OnBehalfRefused as exc:
        raise ApiError(403, "forbidden-on-behalf", str(exc), {f: [_ON_BEHALF[f]] for f in exc.fields})
    except requesters.UnknownReference as exc:
        raise unknown_reference(exc)
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

