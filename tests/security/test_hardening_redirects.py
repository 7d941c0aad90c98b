"""Issue 13.7: every next / back / return_to (and Referer) redirect goes through one safe check."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpdesk.audit import Actor
from helpdesk.security import safe_next

HOSTILE = ["/\t/evil.tld", "/\n/evil.tld", "/\r\n/evil.tld", " //evil.tld", "\t//evil.tld", "\x00//evil.tld",
           "//evil.tld", "/\\evil.tld", "\\\\evil.tld", "https://evil.tld/", "http:evil.tld", "javascript:alert(1)",
           "/\u2028/evil.tld", "/\u200b/evil.tld", "\u3000//evil.tld", "/\x0b/evil.tld"]
PARAMS = ("next", "back", "return_to")


@pytest.mark.parametrize("target", HOSTILE)
def test_safe_next_refuses_what_a_browser_reads_as_another_host(target):
    assert safe_next(target) is None, repr(target)


@pytest.mark.parametrize("target,cleaned", [("/tickets/HD-000001?x=1", "/tickets/HD-000001?x=1"),
                                            (" /insights\t", "/insights"), ("\u3000/insights\n", "/insights")])
def test_safe_next_keeps_same_site_paths(target, cleaned):
    assert safe_next(target) == cleaned


def _browser_reads(location: str) -> str:
    """What a browser makes of a Location header: tabs/newlines removed, C0 and space trimmed."""
    location = re.sub(r"[\t\n\r]", "", location)
    return location.strip("".join(chr(c) for c in range(0x21)))


def _same_site(location: str) -> bool:
    read = _browser_reads(location)
    if read.startswith("/") and not read.startswith("//") and "\\" not in read:
        return True
    parts = urlsplit(read)
    return parts.scheme in ("http", "https") and parts.hostname == "localhost"


def _fill(rule, ids: dict, ref: str) -> str | None:
    values = {}
    for arg, conv in rule._converters.items():
        kind = type(conv).__name__
        if "Id" in kind or "Integer" in kind:
            values[arg] = ids.get(arg, ids["default"])
        elif arg in ("ref", "ticket_ref"):
            values[arg] = ref
        elif arg == "role":
            values[arg] = "common"
        elif arg == "fmt":
            values[arg] = "json"
        elif arg == "lang":
            values[arg] = "ja"
        elif "Path" in kind:
            values[arg] = "css/app.css"
        else:
            values[arg] = "first-login"
    try:
        return rule.build(values, append_unknown=False)[1]
    except Exception:
        return None


def test_every_route_keeps_redirects_on_site(app, client, db, make_user, make_org, make_ticket, login):
    from helpdesk.insights import service as insights

    org = make_org(kind="municipality")
    admin = make_user(roles="admin supervisor agent specialist product_owner", org=None)
    ticket = make_ticket(org=org)
    problem = insights.create_problem(db.session, Actor(admin.id, admin.email), title="印刷できない")
    ids = {"default": 1, "problem_id": problem.id, "ticket_id": ticket.id, "user_id": admin.id}
    login(admin)
    redirects = set()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static") or rule.rule.startswith("/api/"):
            continue
        if rule.endpoint in ("accounts.logout",):
            continue  # would end this walk's session
        url = _fill(rule, ids, ticket.ref)
        if url is None:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for target in ("/\t/evil.tld", " //evil.tld", "/\\evil.tld", "https://evil.tld/"):
                query = {p: target for p in PARAMS}
                form = {**query, "ticket": ticket.ref, "csrf_token": "x"}
                headers = {"Referer": "https://evil.tld/x"}
                if method == "GET":
                    response = client.get(url, query_string=query, headers=headers)
                else:
                    response = client.open(url, method=method, query_string=query, data=form, headers=headers)
                checked += 1
                assert response.status_code < 500, (method, url, response.status_code)
                location = response.headers.get("Location")
                if location:
                    redirects.add(rule.endpoint)
                    assert _same_site(location), (method, url, target, location)
    assert checked > 100
    # The routes known to read such a parameter were reached and redirected.
    assert {"insights.link", "insights.unlink", "insights.refresh", "core.set_language"} <= redirects, redirects


def test_problem_link_next_with_tab_stays_on_site(client, db, make_user, make_ticket, login):
    """The reported case: POST /insights/problems/<id>/link with next=/<TAB>/evil.tld."""
    from helpdesk.insights import service as insights

    agent = make_user(roles="agent supervisor")
    ticket = make_ticket()
    problem = insights.create_problem(db.session, Actor(agent.id, agent.email), title="印刷できない")
    login(agent)
    response = client.post(f"/insights/problems/{problem.id}/link", data={"ticket": ticket.ref, "next": "/\t/evil.tld"})
    assert response.status_code == 302
    assert _browser_reads(response.headers["Location"]) == f"/insights/problems/{problem.id}"


def test_every_redirect_parameter_in_the_code_goes_through_safe_next():
    """No view reads next/back/return_to or the Referer for a redirect without the helper."""
    root = Path(__file__).resolve().parents[2] / "helpdesk"
    reads = re.compile(r"""(request\.(args|form|values)\.get\(["'](next|back|return_to)["']|request\.referrer"""
                       r"""|\.(next|back|return_to)\.data)""")
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "security.py":  # the helper itself
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if reads.search(line) and not re.search(r"safe_next\(|redirect_back\(|safe_referrer|form\.next\.data = ",
                                                    line):
                offenders.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
