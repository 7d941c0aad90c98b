"""HTTP views of insights: trends dashboard, recurring groups, problems, evidence, tracker."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import get_locale
from flask_login import current_user

from helpdesk import jobs
from helpdesk.audit import Actor
from helpdesk.auth import INSIGHTS, STAFF, insights_required, roles_required
from helpdesk.common import TOKYO, csv_safe, utcnow
from helpdesk.extensions import db
from helpdesk.insights import bp, charts, service, spikes, tracker, trends
from helpdesk.insights import jobs as insights_jobs
from helpdesk.insights.forms import (EmptyForm, LinkForm, NewProblemForm, ProblemForm, PromoteForm, SendForm,
                                     TransitionForm, _split_refs)
from helpdesk.security import client_ip, redirect_back, safe_next
from helpdesk.accounts.models import Organisation
from helpdesk.insights.models import RecurringGroup
from helpdesk.web import shows_refusals
from helpdesk.tickets.models import parse_ref

STATUS_LABELS = {"candidate": "候補", "accepted": "受理済み", "sent": "開発へ送付済み", "fixed": "修正済み",
                 "verified": "効果確認済み"}
ROLE_LABELS = {"municipality": "自治体", "clinic": "医療機関", "wholesaler": "卸業者", "unknown": "不明"}
DIMENSION_LABELS = {"category": "カテゴリ", "role": "ロール", "prefecture": "都道府県", "channel": "チャネル",
                    "org": "組織"}
TREND_LABELS = {"rising": "増加", "stable": "横ばい", "falling": "減少"}
#: Agents link tickets from the ticket page; product owners and supervisors from the problem page.
link_required = roles_required(*sorted(set(STAFF) | set(INSIGHTS)))
EXPORTS = ("category", "role", "prefecture", "channel", "org", "backlog", "fcr", "spikes", "groups")


def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


def _locale() -> str:
    return "en" if str(get_locale() or "ja").startswith("en") else "ja"


def _window():
    period = request.args.get("period", "week")
    if period not in trends.PERIODS:
        period = "week"
    weeks = request.args.get("weeks", type=int) or 12
    weeks = max(1, min(weeks, 104))
    today = utcnow().astimezone(TOKYO).date()
    since = today - dt.timedelta(weeks=weeks) if period == "week" else today - dt.timedelta(days=min(weeks * 7, 120))
    return period, weeks, since, today


def _csv(filename: str, header: list[str], rows) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
    return Response("\ufeff" + buf.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


def _labels_for(dimension: str, key: str) -> str:
    if dimension == "role":
        return _(ROLE_LABELS.get(key, key))
    if dimension == "category":
        return _category_label(key)
    if dimension == "channel":
        from helpdesk.templating import CHANNEL_LABELS

        return str(CHANNEL_LABELS[key]) if key in CHANNEL_LABELS else key
    if dimension == "org":
        return _org_names([key]).get(key, _("不明") if key == "none" else key)
    return key


def _org_names(codes) -> dict[str, str]:
    """Organisation names by code, for showing names with the code in small print."""
    codes = [c for c in codes if c and c != "none"]
    if not codes:
        return {}
    return dict(db.session.execute(db.select(Organisation.code, Organisation.name)
                                   .where(Organisation.code.in_(codes))).all())


_CATEGORIES: dict[str, tuple[str, str]] = {}


def _category_label(code: str) -> str:
    if not _CATEGORIES:
        from helpdesk.tickets.models import Category

        for c in db.session.scalars(db.select(Category)):
            _CATEGORIES[c.code] = (c.name_ja, c.name_en)
    names = _CATEGORIES.get(code)
    if names is None:
        return _("未分類") if code == "none" else code
    return names[1] if _locale() == "en" else names[0]


@bp.get("/insights")
@insights_required
def index():
    period, weeks, since, until = _window()
    state = trends.rollup_state(db.session)
    sections = []
    for dimension in trends.DIMENSIONS:
        data = trends.volume(db.session, dimension, period, since, until, limit=10)
        top = dict(list(data["series"].items())[:8 if dimension != "org" else 10])
        named = {_labels_for(dimension, k): v for k, v in top.items()}
        sections.append({
            "dimension": dimension, "label": _(DIMENSION_LABELS[dimension]), "periods": data["periods"],
            "rows": [(k, _labels_for(dimension, k), v, data["totals"][k]) for k, v in top.items()],
            "more": 0,
            "chart": charts.line_chart(_("%(dim)s別の問い合わせ件数", dim=_(DIMENSION_LABELS[dimension])),
                                       data["periods"], named),
        })
    backlog = trends.backlog(db.session, period, since, until)
    backlog_chart = charts.line_chart(_("未解決チケット数の推移"), backlog["periods"],
                                      {_("未解決"): [r["open"] for r in backlog["rows"]]})
    fcr = trends.first_contact_resolution(db.session, since, until)
    spike_rows = trends.spike_report(db.session, "week", until)
    sla = trends.sla_compliance(db.session, since, until)
    return render_template("insights/index.html", period=period, weeks=weeks, since=since, until=until,
                           sections=sections, backlog=backlog, backlog_chart=backlog_chart, fcr=fcr,
                           spikes=[s for s in spike_rows if s.flagged] + [s for s in spike_rows if not s.flagged][:10],
                           spike_text=spikes.explanation(_locale()), sla=sla, state=state,
                           role_labels=ROLE_LABELS, refresh_form=EmptyForm(), spike_label=_spike_label,
                           spike_sentence=_spike_sentence)


def _spike_sentence(s) -> str:
    """One plain sentence for a spike decision (the formula is behind 「詳しく」)."""
    if len(s.baseline) < spikes.MIN_BASELINE_PERIODS:
        return _("比べられる過去の週がまだ足りません。")
    usual = int(round(s.median))
    if s.flagged:
        return _("今週は %(n)s 件で、ふだん（%(usual)s 件前後）を大きく上回っています。", n=s.current, usual=usual)
    if s.current < spikes.MIN_COUNT:
        return _("今週は %(n)s 件。件数が少ないため急増とはみなしません。", n=s.current)
    return _("今週は %(n)s 件で、ふだん（%(usual)s 件前後）の範囲内です。", n=s.current, usual=usual)


def _spike_label(key: str) -> str:
    dimension, _sep, value = str(key).partition(":")
    return f"{_(DIMENSION_LABELS.get(dimension, dimension))}: {_labels_for(dimension, value)}"


@bp.get("/insights/export/<name>.csv")
@insights_required
def export(name: str):
    if name not in EXPORTS:
        abort(404)
    period, weeks, since, until = _window()
    if name in trends.DIMENSIONS:
        data = trends.volume(db.session, name, period, since, until)
        return _csv(f"insights-{name}-{period}.csv", [name, "label", *data["periods"], "total"],
                    ([k, _labels_for(name, k), *v, data["totals"][k]] for k, v in data["series"].items()))
    if name == "backlog":
        rows = trends.backlog(db.session, period, since, until)["rows"]
        return _csv("insights-backlog.csv", ["period", "created", "resolved", "open"],
                    ([r["period"], r["created"], r["resolved"], r["open"]] for r in rows))
    if name == "fcr":
        rows = trends.first_contact_resolution(db.session, since, until)
        return _csv("insights-first-contact.csv", ["role", "created", "resolved", "first_contact", "rate"],
                    ([r["role"], r["created"], r["resolved"], r["first_contact"],
                      "" if r["rate"] is None else f"{r['rate']:.3f}"] for r in rows))
    if name == "spikes":
        rows = trends.spike_report(db.session, "week", until)
        return _csv("insights-spikes.csv", ["series", "current", "median", "mad", "scale", "z", "flagged", "reason"],
                    ([s.key, s.current, s.median, s.mad, s.scale, s.z, "yes" if s.flagged else "no", s.reason]
                     for s in rows))
    groups = service.list_groups(db.session)
    return _csv("insights-recurring-groups.csv",
                ["id", "label", "size", "trend", "roles", "first_seen", "last_seen", "top_terms"],
                ([g.id, g.label, g.size, g.trend, " ".join(f"{k}:{v}" for k, v in sorted(g.roles.items())),
                  g.first_seen.astimezone(TOKYO).date().isoformat() if g.first_seen else "",
                  g.last_seen.astimezone(TOKYO).date().isoformat() if g.last_seen else "",
                  " ".join(g.top_terms)] for g in groups))


@bp.post("/insights/refresh")
@insights_required
def refresh():
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    queued = jobs.enqueue(insights_jobs.refresh_all, queue="insights", job_timeout=1800)
    flash(_("再集計を開始しました。数分後にページを開き直してください。") if queued
          else _("再集計を依頼できませんでした（ジョブキューに接続できません）。"), "info" if queued else "error")
    return redirect_back(request.form.get("next"), url_for("insights.index"))


@bp.get("/insights/recurring")
@insights_required
def recurring():
    groups = service.list_groups(db.session)
    problems = service.group_problem_ids(db.session)
    return render_template("insights/recurring.html", groups=groups, problems=problems, form=PromoteForm(), tz=TOKYO,
                           refresh_form=EmptyForm(), role_labels=ROLE_LABELS, trend_labels=TREND_LABELS,
                           sparkline=_sparkline)


def _sparkline(group):
    weekly = group.weekly or {"weeks": [], "counts": []}
    return charts.sparkline(_("週別の件数"), weekly["weeks"], weekly["counts"])


@bp.get("/insights/recurring/<int:group_id>")
@insights_required
def group(group_id: int):
    row = db.session.get(RecurringGroup, group_id)
    if row is None:
        abort(404)
    weekly = row.weekly or {"weeks": [], "counts": []}
    chart = charts.bar_chart(_("週別の件数（直近8週、件数0の週も表示）"), weekly["weeks"], weekly["counts"])
    return render_template("insights/group.html", group=row, tickets=service.group_tickets(db.session, row.id),
                           problem_id=service.group_problem_ids(db.session).get(row.id), chart=chart, form=PromoteForm(),
                           role_labels=ROLE_LABELS, trend_labels=TREND_LABELS, tz=TOKYO)


@bp.post("/insights/recurring/<int:group_id>/promote")
@insights_required
@shows_refusals(service.InsightsError, redirect_to=lambda group_id: url_for("insights.recurring"))
def promote(group_id: int):
    form = PromoteForm()
    if not form.validate_on_submit():
        flash(" ".join(str(e) for errs in form.errors.values() for e in errs) or _("入力を確認してください。"), "error")
        return redirect(url_for("insights.recurring"))
    problem = service.promote_group(db.session, group_id, _actor(), title=form.title.data)
    flash(_("問題「%(title)s」を作成しました。", title=problem.title), "success")
    return redirect(url_for("insights.problem", problem_id=problem.id))


@bp.route("/insights/problems", methods=["GET", "POST"])
@insights_required
def problems():
    form = NewProblemForm()
    if form.validate_on_submit():
        from helpdesk.tickets.models import parse_ref

        ids = [parse_ref(t) for t in _split_refs(form.tickets.data)]
        from helpdesk.tickets.models import Ticket

        missing = [f"HD-{i:06d}" for i in ids if db.session.get(Ticket, i) is None]
        if missing:
            form.tickets.errors.append(_("見つからないチケットがあります: %(refs)s", refs=", ".join(missing[:5])))
        else:
            problem = service.create_problem(db.session, _actor(), title=form.title.data,
                                             description=form.description.data or "", ticket_ids=ids)
            flash(_("問題「%(title)s」を作成しました。", title=problem.title), "success")
            return redirect(url_for("insights.problem", problem_id=problem.id))
    return render_template("insights/problems.html", rows=service.list_problems(db.session), form=form,
                           status_labels=STATUS_LABELS)


def _problem_page(problem, *, edit_form=None, transition_form=None, link_form=None, status=200):
    result = service.impact(db.session, problem.id)
    impact_chart = None
    if result:
        labels = [w["week"] for w in result["before"]] + [result["fix_week"]] + [w["week"] for w in result["after"]]
        values = [w["count"] for w in result["before"]] + [result["fix_week_count"]] + [w["count"] for w in result["after"]]
        impact_chart = charts.bar_chart(_("修正前後の週別該当チケット数"), labels, values,
                                        highlight_from=len(result["before"]), marker_label=_("修正リリース"))
    pack = service.evidence(db.session, problem.id)
    weekly_chart = charts.bar_chart(_("週別の関連チケット数"), [w["week"] for w in pack["by_week"]],
                                    [w["total"] for w in pack["by_week"]])
    edit_form = edit_form or ProblemForm(obj=problem, formdata=None)
    edit_form.version.data = problem.version
    transition_form = transition_form or TransitionForm(formdata=None)
    transition_form.to.choices = [(s, _(STATUS_LABELS[s])) for s in service.allowed_transitions(problem)]
    transition_form.version.data = problem.version
    send_form = SendForm(formdata=None)
    send_form.version.data = problem.version
    return render_template(
        "insights/problem.html", problem=problem, pack=pack, impact=result, impact_chart=impact_chart,
        weekly_chart=weekly_chart, tickets=service.linked_tickets(db.session, problem.id, limit=200),
        deliveries=tracker.delivery_log(db.session, problem.id), edit_form=edit_form,
        transition_form=transition_form, send_form=send_form, link_form=link_form or LinkForm(formdata=None),
        unlink_form=EmptyForm(), status_labels=STATUS_LABELS, role_labels=ROLE_LABELS,
        org_names=_org_names([o["code"] for o in pack["top_organisations"]]),
        roles_in_words=service.roles_in_words,
        tracker_configured=tracker.configured(current_app.config)), status


def _load(problem_id: int):
    try:
        return service.get_problem(db.session, problem_id)
    except service.NotFound:
        abort(404)


@bp.get("/insights/problems/<int:problem_id>")
@insights_required
def problem(problem_id: int):
    return _problem_page(_load(problem_id))


@bp.post("/insights/problems/<int:problem_id>/edit")
@insights_required
@shows_refusals(service.InsightsError, form=ProblemForm, field="title",
                page=lambda form, problem_id: _problem_page(_load(problem_id), edit_form=form, status=409))
def edit_problem(problem_id: int):
    problem = _load(problem_id)
    form = ProblemForm()
    if not form.validate_on_submit():
        return _problem_page(problem, edit_form=form, status=422)
    service.update_problem(db.session, problem.id, _actor(), title=form.title.data,
                           description=form.description.data or "", workaround=form.workaround.data or "",
                           expected_version=_int(form.version.data))
    flash(_("保存しました。"), "success")
    return redirect(url_for("insights.problem", problem_id=problem.id))


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@bp.post("/insights/problems/<int:problem_id>/transition")
@insights_required
def transition(problem_id: int):
    problem = _load(problem_id)
    form = TransitionForm()
    form.to.choices = [(s, s) for s in service.allowed_transitions(problem)]
    if not form.validate_on_submit():
        if form.to.data == "sent":  # only sending to the tracker sets it
            form.to.errors = [_("「開発へ送付済み」には、開発トラッカーへ送ったときだけ変わります。")]
        return _problem_page(problem, transition_form=form, status=422)
    try:
        service.transition_problem(db.session, problem.id, form.to.data, _actor(), fixed_on=form.fixed_on.data,
                                   expected_version=_int(form.version.data))
    except service.InsightsError as exc:
        db.session.rollback()
        target = form.fixed_on if form.to.data == "fixed" and form.fixed_on.data is None else form.to
        target.errors = list(target.errors) + [str(exc)]
        return _problem_page(_load(problem_id), transition_form=form, status=409)
    flash(_("状態を「%(status)s」に変更しました。", status=_(STATUS_LABELS[form.to.data])), "success")
    return redirect(url_for("insights.problem", problem_id=problem.id))


@bp.post("/insights/problems/<int:problem_id>/send")
@insights_required
@shows_refusals(service.InsightsError, redirect_to=lambda problem_id: url_for("insights.problem", problem_id=problem_id))
def send(problem_id: int):
    problem = _load(problem_id)
    form = SendForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        tracker.send_problem(db.session, problem.id, _actor(), url=current_app.config.get("TRACKER_WEBHOOK_URL"),
                             secret=current_app.config.get("TRACKER_WEBHOOK_SECRET"),
                             expected_version=_int(form.version.data))
    except tracker.TrackerNotConfigured:
        db.session.rollback()
        flash(_("開発トラッカーとの連携が設定されていません。管理者に連絡してください。"), "error")
        return redirect(url_for("insights.problem", problem_id=problem_id))
    flash(_("開発トラッカーへの送信を受け付けました。送信結果は下の送信ログで確認できます。"), "success")
    return redirect(url_for("insights.problem", problem_id=problem_id))


@bp.get("/insights/problems/<int:problem_id>/evidence.<fmt>")
@insights_required
def evidence(problem_id: int, fmt: str):
    problem = _load(problem_id)
    pack = service.evidence(db.session, problem.id)
    if fmt == "json":
        return Response(json.dumps(pack, ensure_ascii=False, indent=2), mimetype="application/json",
                        headers={"Content-Disposition": f"attachment; filename={problem.ref}-evidence.json"})
    if fmt == "md":
        return Response(service.evidence_markdown(pack), mimetype="text/markdown; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename={problem.ref}-evidence.md"})
    abort(404)


@bp.get("/insights/problems/<int:problem_id>/export/<name>.csv")
@insights_required
def problem_export(problem_id: int, name: str):
    problem = _load(problem_id)
    if name == "weeks":
        pack = service.evidence(db.session, problem.id)
        return _csv(f"{problem.ref}-weeks.csv", ["week", "total", "municipality", "clinic", "wholesaler"],
                    ([w["week"], w["total"], w["by_role"].get("municipality", 0), w["by_role"].get("clinic", 0),
                      w["by_role"].get("wholesaler", 0)] for w in pack["by_week"]))
    if name == "impact":
        result = service.impact(db.session, problem.id) or {"before": [], "after": []}
        rows = [[w["week"], w["count"], "before"] for w in result["before"]]
        if result.get("fix_week"):
            rows.append([result["fix_week"], result["fix_week_count"], "release"])
        rows += [[w["week"], w["count"], "after"] for w in result["after"]]
        return _csv(f"{problem.ref}-impact.csv", ["week", "tickets", "phase"], rows)
    if name == "tickets":
        return _csv(f"{problem.ref}-tickets.csv", ["ref", "subject", "role", "created_at", "link_source"],
                    ([t.ref, t.subject, t.role or "", t.created_at.astimezone(TOKYO).isoformat(), source]
                     for t, source in service.linked_tickets(db.session, problem.id)))
    abort(404)


@bp.app_context_processor
def _known_problems():
    """Let any page (the ticket page) include insights/_ticket_problems.html with just `ticket` in scope."""

    def known_problems_for(ticket_id):
        if not current_user.is_authenticated or not (current_user.has_role(*STAFF) or current_user.has_role(*INSIGHTS)):
            return []
        return service.problems_for_ticket(db.session, ticket_id)

    def open_problems():
        return service.linkable_problems(db.session)

    return {"known_problems_for": known_problems_for, "insights_open_problems": open_problems}


def _link_back(problem_id: int) -> str:
    return safe_next(request.form.get("next")) or url_for("insights.problem", problem_id=problem_id)


@bp.post("/insights/problems/<int:problem_id>/link")
@link_required
@shows_refusals(service.InsightsError, redirect_to=_link_back)
def link(problem_id: int):
    """Agents link a ticket to a known problem (from the problem page or the ticket page)."""
    problem = _load(problem_id)
    form = LinkForm()
    back = _link_back(problem.id)
    if not form.validate_on_submit():
        flash(" ".join(str(e) for errs in form.errors.values() for e in errs), "error")
        return redirect(back)
    added = service.link_ticket(db.session, problem.id, parse_ref(form.ticket.data), _actor())
    flash(_("チケットを問題に紐付けました。") if added else _("このチケットはすでに紐付いています。"), "success")
    return redirect(back)


@bp.post("/insights/problems/<int:problem_id>/unlink/<int:ticket_id>")
@link_required
def unlink(problem_id: int, ticket_id: int):
    problem = _load(problem_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    service.unlink_ticket(db.session, problem.id, ticket_id, _actor())
    flash(_("紐付けを外しました。"), "success")
    return redirect_back(request.form.get("next"), url_for("insights.problem", problem_id=problem.id))
