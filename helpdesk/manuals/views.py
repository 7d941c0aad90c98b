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
from helpdesk.auth import insights_required, login_required, public, roles_required, staff_required
from helpdesk.common import csv_safe, utcnow
from helpdesk.extensions import db
from helpdesk.routing import external_url
from helpdesk.manuals import bp, loop, service
from helpdesk.manuals.forms import DraftForm, DraftFromTicketsForm, FeedbackForm, LinkForm
from helpdesk.security import client_ip, safe_referrer
from helpdesk.text import clean_input
from helpdesk.web import shows_refusals

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
    search_id = None
    if q:
        results = kb.search(q, role=role_filter if role_filter != "common" else None, lang=None, k=20,
                            prior=loop.feedback_prior(db.session))
        search_id = loop.log_search(db.session, source="search", query=q, hits=results,
                                    user=current_user if current_user.is_authenticated else None,
                                    role=own or role_filter)
    return render_template("manuals/index.html", sections=sections, own_role=own, q=q, results=results,
                           role_filter=role_filter, lang=lang, search_id=search_id)


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
    if source in ("suggest", "search") and (request.args.get("lt") or request.args.get("sq")):
        token = request.args.get("lt")
        loop.mark_clicked(db.session, slug=slug, token=token if service.valid_token(token) else None,
                          search_id=request.args.get("sq", type=int), user_id=user_id)
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
    """Suggestions while typing: {"results": [{slug, title, role, lang, url, path, excerpt, score}]}.

    `url` is absolute (BASE_URL), for what an agent pastes into a reply; `path` is what the page links to."""
    q = clean_input(request.args.get("q"), SUGGEST_MAX_QUERY)
    role = request.args.get("role")
    if role not in ROLES or role == "common":
        role = None
    if not current_user.is_staff and current_user.org_kind in ROLES:
        role = current_user.org_kind  # a requester always sees their own role's articles + common
    lang = request.args.get("lang") if request.args.get("lang") in ("ja", "en") else None
    k = min(max(request.args.get("k", default=5, type=int) or 5, 1), 5)
    hits = _kb().suggest(q, role=role, k=k, lang=lang, prior=loop.feedback_prior(db.session)) if len(q) >= 2 else []
    token = request.args.get("lt")
    if hits is not None and service.valid_token(token):
        loop.log_search(db.session, source="agent" if current_user.is_staff else "portal", query=q, hits=hits,
                        user=current_user, role=role or _user_role(), token=token)
    results = [{"slug": h.slug, "title": h.title, "role": h.role, "lang": h.lang, "score": h.score,
                "excerpt": h.excerpt,
                "url": external_url("manuals.article", role=h.role, slug=h.slug, lang=h.lang),
                "path": url_for("manuals.article", role=h.role, slug=h.slug, lang=h.lang)}
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
        if service.valid_token(request.form.get("lt")):
            loop.mark_clicked(db.session, slug=form.slug.data, token=request.form["lt"], user_id=current_user.id)
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
    if service.valid_token(request.form.get("token")):
        loop.mark_ticket_submitted(db.session, token=request.form["token"])
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
    effects = loop.article_effects(db.session, _kb(), locale=_locale())
    return render_template("manuals/analytics.html", articles=articles, categories=categories, effects=effects,
                           effect_days=loop.EFFECT_WINDOW_DAYS, days=request.args.get("days", type=int))


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


# --- the knowledge loop: content gaps, drafts from tickets (manual editors only) -----------------------

#: Manual editors: L2 specialists, supervisors, product owners and admins; never requesters.
editor_required = roles_required("specialist", "supervisor", "product_owner", "admin")
DRAFT_FIELDS = ("slug", "role", "tags", "title_ja", "body_ja", "title_en", "body_en")


@bp.get("/manuals/gaps")
@editor_required
def gaps():
    days = request.args.get("days", default=30, type=int)
    days = days if days in (7, 30, 90, 365) else 30
    since = utcnow() - dt.timedelta(days=days)
    topics = loop.content_gaps(db.session, since=since)
    groups = loop.uncovered_groups(db.session)
    return render_template("manuals/gaps.html", topics=topics, groups=groups, days=days,
                           roles=("municipality", "clinic", "wholesaler", "agent", "unknown"),
                           form=DraftFromTicketsForm())


@bp.get("/manuals/drafts")
@editor_required
def drafts():
    status = request.args.get("status") if request.args.get("status") in ("draft", "published", "discarded") else "draft"
    return render_template("manuals/drafts.html", drafts=loop.list_drafts(db.session, status), status=status,
                           form=DraftFromTicketsForm())


@bp.post("/manuals/drafts/new")
@editor_required
@shows_refusals(loop.LoopError, redirect_to=lambda: safe_referrer() or url_for("manuals.drafts"))
def draft_new():
    form = DraftFromTicketsForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return redirect(safe_referrer() or url_for("manuals.drafts"))
    refs = [r for r in (form.ticket_refs.data or "").replace(",", " ").split() if r]
    draft = loop.create_draft(db.session, _actor(), group_id=form.group_id.data or None,
                              ticket_refs=refs if not form.group_id.data else None)
    flash(_("下書きを作成しました。内容を確認・編集してから公開してください。"), "success")
    return redirect(url_for("manuals.draft_edit", draft_id=draft.id))


@bp.route("/manuals/drafts/<int:draft_id>", methods=["GET", "POST"])
@editor_required
def draft_edit(draft_id: int):
    try:
        draft = loop.get_draft(db.session, draft_id)
    except loop.LoopError:
        abort(404)
    form = DraftForm(obj=draft) if request.method == "GET" else DraftForm()
    if request.method == "GET":
        form.tags.data = ", ".join(draft.tags or [])
        form.expected_version.data = draft.version
    errors: dict[str, str] = {}
    preview = None
    if request.method == "POST":
        if not form.validate_on_submit():
            errors = {k: " ".join(str(m) for m in v) for k, v in form.errors.items()}
        else:
            action = request.form.get("action", "save")
            data = {k: getattr(form, k).data for k in DRAFT_FIELDS}
            try:
                if action == "discard":
                    loop.discard_draft(db.session, draft_id, _actor())
                    flash(_("下書きを破棄しました。"), "success")
                    return redirect(url_for("manuals.drafts"))
                draft = loop.save_draft(db.session, draft_id, _actor(), data,
                                        expected_version=form.expected_version.data)
                form.expected_version.data = draft.version
                if action == "publish":
                    draft = loop.publish_draft(db.session, draft_id, _actor(), current_app.config["MANUALS_DIR"],
                                               expected_version=draft.version)
                    service.invalidate_kb()
                    flash(_("記事を公開しました（第%(v)s版）。", v=draft.published_version), "success")
                    return redirect(url_for("manuals.article", role=draft.role, slug=draft.slug))
                if action == "preview":
                    preview = {lang: service.render_markdown(getattr(draft, f"body_{lang}"),
                                                             link_for=lambda r, s: article_url(r, s))
                               for lang in ("ja", "en") if getattr(draft, f"body_{lang}").strip()}
                else:
                    flash(_("下書きを保存しました。"), "success")
                    return redirect(url_for("manuals.draft_edit", draft_id=draft_id))
            except loop.LoopError as exc:
                db.session.rollback()
                if exc.field in DRAFT_FIELDS:
                    getattr(form, exc.field).errors = [str(exc)]
                errors[exc.field if exc.field in DRAFT_FIELDS else "form"] = str(exc)
                draft = loop.get_draft(db.session, draft_id)
    problem = None
    if draft.problem_id:
        from helpdesk.insights.models import Problem
        problem = db.session.get(Problem, draft.problem_id)
    return render_template("manuals/draft_edit.html", draft=draft, form=form, errors=errors, preview=preview,
                           problem=problem), (422 if errors else 200)
