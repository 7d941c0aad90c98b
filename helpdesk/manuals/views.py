"""HTTP views of the manuals: browse, article, versions, feedback, suggestions, linking, analytics."""
from __future__ import annotations

import csv
import datetime as dt
import io

from flask import Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from helpdesk.audit import Actor
from helpdesk.auth import insights_required, login_required, public, staff_required
from helpdesk.common import csv_safe, utcnow
from helpdesk.extensions import db
from helpdesk.manuals import bp, service
from helpdesk.manuals.forms import FeedbackForm, LinkForm
from helpdesk.routing import external_url
from helpdesk.security import client_ip, safe_referrer
from helpdesk.text import clean_input

ROLES = ("municipality", "clinic", "wholesaler", "common")
SUGGEST_MAX_QUERY = 4000


def _kb():
    return service.get_kb(current_app.config["MANUALS_DIR"])


def _locale() -> str:
    return "en" if str(get_locale() or "ja").startswith("en") else "ja"


def _user_role() -> str | None:
    if current_user.is_authenticated:
        kind = current_user.org_kind
        return kind if kind in ROLES else None
    return None


def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


def article_url(role: str | None, slug: str, **params) -> str:
    if role is None:
        art = _kb().get(slug)
        role = art.role if art else "common"
    return url_for("manuals.article", role=role, slug=slug, **params)


@bp.get("/manuals")
@public
def index():
    kb = _kb()
    lang = request.args.get("lang") if request.args.get("lang") in ("ja", "en") else _locale()
    own = _user_role()
    order = ([own] if own else []) + ["common"] + [r for r in ("municipality", "clinic", "wholesaler") if r != own]
    sections = [(role, kb.for_role(role, lang)) for role in order]
    q = clean_input(request.args.get("q"), 200)
    role_filter = request.args.get("role") if request.args.get("role") in ROLES else None
    results = None
    if q:
        results = kb.search(q, role=role_filter if role_filter != "common" else None, lang=None, k=20)
    return render_template("manuals/index.html", sections=sections, own_role=own, q=q, results=results,
                           role_filter=role_filter, lang=lang)


@bp.get("/manuals/<role>/<slug>")
@public
def article(role: str, slug: str):
    kb = _kb()
    if role not in ROLES:
        abort(404)
    translations = kb.translations(slug)
    if not translations:
        abort(404)
    lang = request.args.get("lang")
    if lang not in translations:
        lang = _locale() if _locale() in translations else next(iter(translations))
    art = translations[lang]
    if art.role != role:
        return redirect(url_for("manuals.article", role=art.role, slug=slug, lang=lang), 301)
    row = service.article_row(db.session, slug, lang)
    version = row.version if row is not None else art.version
    user_id = current_user.id if current_user.is_authenticated else None
    source = request.args.get("src", "direct")
    service.record_view(db.session, slug=slug, lang=lang, user_id=user_id, source=source)
    if source == "suggest" and request.args.get("sg"):
        service.record_suggestion_opened(db.session, token=request.args["sg"], slug=slug, user_id=user_id)
    rendered = service.render_markdown(art.body, link_for=lambda r, s: article_url(r, s, lang=lang))
    related = [a for a in (kb.get(s, lang) or kb.get(s) for s in art.related) if a is not None]
    answered = user_id is not None and service.has_answered(db.session, slug=slug, lang=lang, version=version,
                                                            user_id=user_id)
    return render_template("manuals/article.html", art=art, rendered=rendered, related=related, version=version,
                           row=row, translations=translations, lang=lang, answered=answered,
                           form=FeedbackForm(), can_see_versions=current_user.is_authenticated and current_user.is_staff)


@bp.post("/manuals/<role>/<slug>/feedback")
@login_required
def feedback(role: str, slug: str):
    kb = _kb()
    lang = request.form.get("lang") if request.form.get("lang") in ("ja", "en") else "ja"
    art = kb.get(slug, lang)
    if art is None or art.role != role:
        abort(404)
    form = FeedbackForm()
    target = url_for("manuals.article", role=role, slug=slug, lang=lang) + "#feedback"
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return redirect(target)
    row = service.article_row(db.session, slug, lang)
    version = row.version if row is not None else art.version
    try:
        service.record_feedback(db.session, slug=slug, lang=lang, version=version, user_id=current_user.id,
                                helpful=form.helpful.data == "yes", comment=form.comment.data, actor=_actor())
    except service.AlreadyAnswered as exc:
        flash(str(exc), "warning")
        return redirect(target)
    flash(_("ご回答ありがとうございました。"), "success")
    return redirect(target)


@bp.get("/manuals/<role>/<slug>/versions")
@staff_required
def versions(role: str, slug: str):
    lang = request.args.get("lang") if request.args.get("lang") in ("ja", "en") else _locale()
    rows = service.versions(db.session, slug, lang)
    if not rows:
        abort(404)
    diff = None
    old, new = request.args.get("old", type=int), request.args.get("new", type=int)
    if old is None and len(rows) > 1:
        old, new = rows[1].version, rows[0].version
    if old is not None and new is not None:
        try:
            diff = service.version_diff(db.session, slug, lang, old, new)
        except service.ManualsError as exc:
            flash(str(exc), "error")
    show = request.args.get("show", type=int)
    shown = next((v for v in rows if v.version == show), None)
    rendered = service.render_markdown(shown.body) if shown else None
    return render_template("manuals/versions.html", rows=rows, role=role, slug=slug, lang=lang, diff=diff,
                           old=old, new=new, shown=shown, rendered=rendered)


@bp.get("/manuals/suggest")
@login_required
def suggest():
    """Suggestions while typing: {"results": [{slug, title, role, lang, url, excerpt, score}]}."""
    q = clean_input(request.args.get("q"), SUGGEST_MAX_QUERY)
    role = request.args.get("role")
    if role not in ROLES or role == "common":
        role = None
    if not current_user.is_staff and current_user.org_kind in ROLES:
        role = current_user.org_kind  # a requester always sees their own role's articles + common
    lang = request.args.get("lang") if request.args.get("lang") in ("ja", "en") else None
    k = min(max(request.args.get("k", default=5, type=int) or 5, 1), 5)
    hits = _kb().suggest(q, role=role, k=k, lang=lang) if len(q) >= 2 else []
    results = [{"slug": h.slug, "title": h.title, "role": h.role, "lang": h.lang, "score": h.score,
                "excerpt": h.excerpt,
                "url": external_url("manuals.article", role=h.role, slug=h.slug, lang=h.lang)}
               for h in hits]
    resp = jsonify({"query": q[:200], "role": role, "results": results})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/manuals/link")
@staff_required
def link():
    """Link an article to a ticket (from the "insert into reply" button); JSON for fetch, redirect otherwise."""
    form = LinkForm()
    wants_json = request.accept_mimetypes.best == "application/json" or request.headers.get("X-Requested-With")
    if not form.validate_on_submit():
        errors = {k: [str(m) for m in v] for k, v in form.errors.items()}
        if wants_json:
            return jsonify({"ok": False, "errors": errors}), 400
        for msgs in errors.values():
            for m in msgs:
                flash(m, "error")
        return redirect(safe_referrer() or url_for("manuals.index"))
    ref = form.ticket_ref.data.strip().upper()
    try:
        service.link_to_ticket(db.session, ticket_ref=ref, slug=form.slug.data, user=current_user, actor=_actor(),
                               kb=_kb(), resolved_by=bool(form.resolved_by.data))
    except service.ManualsError as exc:
        if wants_json:
            return jsonify({"ok": False, "errors": {"slug": [str(exc)]}}), 404
        flash(str(exc), "error")
        return redirect(safe_referrer() or url_for("manuals.index"))
    except Exception as exc:  # the tickets service refuses (e.g. TicketError)
        from helpdesk.tickets.service import TicketError

        if not isinstance(exc, TicketError):
            raise
        db.session.rollback()
        if wants_json:
            return jsonify({"ok": False, "errors": {"ticket_ref": [str(exc)]}}), 409
        flash(str(exc), "error")
        return redirect(safe_referrer() or url_for("manuals.index"))
    if wants_json:
        return jsonify({"ok": True, "ticket_ref": ref, "slug": form.slug.data})
    flash(_("記事をチケットに紐付けました。"), "success")
    return redirect(url_for("tickets.detail", ref=ref) if "tickets.detail" in current_app.view_functions
                    else url_for("manuals.index"))


@bp.post("/manuals/deflection/submitted")
@login_required
def deflection_submitted():
    """The new-ticket page with this client token was submitted (sent by suggest.js with sendBeacon)."""
    n = service.record_ticket_submitted(db.session, token=request.form.get("token"))
    return jsonify({"ok": True, "updated": n})


def _since() -> dt.datetime | None:
    days = request.args.get("days", type=int)
    if days and 0 < days <= 3650:
        return utcnow() - dt.timedelta(days=days)
    return None


@bp.get("/manuals/analytics")
@insights_required
def analytics():
    articles, categories = service.analytics(db.session, _kb(), since=_since(), locale=_locale())
    return render_template("manuals/analytics.html", articles=articles, categories=categories,
                           days=request.args.get("days", type=int))


@bp.get("/manuals/analytics.csv")
@insights_required
def analytics_csv():
    articles, categories = service.analytics(db.session, _kb(), since=_since(), locale=_locale())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["slug", "role", "title", "category", "views", "helpful", "not_helpful", "helpful_ratio",
                "tickets_linked", "tickets_resolved", "deflections"])
    for a in articles:
        ratio = "" if a.helpful_ratio is None else f"{a.helpful_ratio:.3f}"
        w.writerow([csv_safe(v) for v in (a.slug, a.role, a.title, a.category or "", a.views, a.helpful,
                                          a.not_helpful, ratio, a.linked, a.resolved, a.deflections)])
    w.writerow([])
    w.writerow(["category", "label", "tickets", "tickets_with_article", "coverage", "articles", "gap"])
    for c in categories:
        cov = "" if c.coverage is None else f"{c.coverage:.3f}"
        w.writerow([csv_safe(v) for v in (c.code, c.label, c.tickets, c.with_article, cov, c.articles,
                                          "yes" if c.gap else "no")])
    return Response("\ufeff" + buf.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=manual-analytics.csv"})
