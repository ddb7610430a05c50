"""Impersonation end to end (SPEC §4, §6, §7): who may act as whom, consent, the session
ending before anything more is forwarded, read-only and hidden paths, cookie isolation."""
import json
import sqlite3
import threading
import time
import urllib.parse

import pytest

from conftest import (
    ORIGIN, Proxy, complete_lines, Upstream, header_values, import_users, login, me, read_response, request_bytes, run,
    session_header, wait_for,
)

pytestmark = pytest.mark.protocols("http/1.1", "h2")

NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))

USERS = [
    {"username": "admin", "name": "Ada Admin", "email": "admin@example.com", "role": "super_admin", "org_unit": "acme", "last_login": NOW},
    {"username": "admin2", "name": "Bea Admin", "email": "admin2@example.com", "role": "super_admin", "org_unit": "acme", "last_login": NOW},
    {"username": "hr", "name": "Harriet HR", "email": "hr@example.com", "role": "hr_admin", "org_unit": "acme/emea", "last_login": NOW},
    {"username": "mgr", "name": "Max Manager", "email": "mgr@example.com", "role": "manager", "org_unit": "acme/emea", "last_login": NOW},
    {"username": "emp", "name": "Emma Employee", "email": "emp@example.com", "role": "employee", "org_unit": "acme/emea/sales",
     "groups": ["sales"], "last_login": NOW},
    {"username": "sus", "role": "employee", "org_unit": "acme/emea", "last_login": NOW},  # suspended after consenting
    {"username": "newbie", "role": "employee", "org_unit": "acme/emea"},
    {"username": "peer", "role": "super_admin", "org_unit": "acme", "last_login": NOW},
    {"username": "far", "role": "employee", "org_unit": "acme/us", "last_login": NOW},
    {"username": "evil", "role": "employee", "org_unit": "acme/emea-evil", "last_login": NOW},
    {"username": "nocon", "role": "employee", "org_unit": "acme/emea", "last_login": NOW},
]
CONSENTING = ["emp", "sus", "newbie", "peer", "far", "evil", "admin2"]
REASON = "Ticket 4711: the report page is blank"


def config(**extra):
    return {"auth.public_paths": ["/static/*"], "auth.methods": ["password", "token"], **extra}


def acting_on_a_shared_site(tmp_path_factory, name):
    """A module's shared site: a recording upstream, a proxy with the demo directory, and the
    administrator acting as emp. A generator for module-scoped fixtures: yields (proxy,
    upstream, admin), stops both after."""
    tmp = tmp_path_factory.mktemp(name)
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, config())
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    assert admin.start("emp")[0].status == 201
    yield proxy, upstream, admin
    proxy.stop()
    upstream.stop()


def setup_site(proxy):
    import_users(proxy, USERS)
    for username in CONSENTING:
        run(["consent", "grant", username, "--hours", "24", "--config", str(proxy.config_path)])
    run(["users", "suspend", "sus", "--config", str(proxy.config_path)])
    emp_id = json.loads(run(["users", "show", "emp", "--json", "--config", str(proxy.config_path)]).stdout)["id"]

    def consent_known():
        cookie = login(proxy, "admin")
        rows = users_api(proxy, cookie)
        return any(r["username"] == "emp" and r["impersonable"] for r in rows)
    wait_for(consent_known, timeout=5, what="consents to reach the server")
    return emp_id


class Admin:
    """A signed-in person driving the JSON API with their cookie and CSRF token."""

    def __init__(self, proxy, username):
        self.proxy = proxy
        self.username = username
        self.cookie = login(proxy, username)
        self.csrf = me(proxy, self.cookie)["csrf_token"]

    def api(self, method, path, body=None, csrf=True, origin=ORIGIN, accept="application/json"):
        headers = [session_header(self.cookie), ("Accept", accept)]
        if csrf:
            headers.append(("X-CSRF-Token", self.csrf))
        if origin:
            headers.append(("Origin", origin))
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            headers.append(("Content-Type", "application/json"))
        response = self.proxy.request(request_bytes(method, path, headers, data))
        return response, (json.loads(response.body) if response.body.startswith(b"{") else None)

    def start(self, target, reason=REASON, **fields):
        return self.api("POST", "/.actas/api/v1/impersonation", {"target": target, "reason": reason, **fields})

    def get(self, path, extra=()):
        return self.proxy.request(request_bytes("GET", path, [session_header(self.cookie), *extra]))

    def browse(self, path):
        """A browser navigation."""
        return self.get(path, [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")])

    def fetch(self, path):
        """A script's request (not a navigation)."""
        return self.get(path, [("Accept", "application/json"), ("Sec-Fetch-Mode", "cors")])

    def form(self, path, fields):
        body = urllib.parse.urlencode({"csrf_token": self.csrf, **fields}).encode()
        return self.proxy.request(request_bytes("POST", path, [
            session_header(self.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN),
            ("Accept", "text/html")], body))


def users_api(proxy, cookie, q=""):
    response = proxy.request(request_bytes("GET", f"/.actas/api/v1/users?q={q}", [session_header(cookie)]))
    assert response.status == 200, response
    return json.loads(response.body)["users"]


def audit(proxy):
    return [json.loads(line) for line in complete_lines(proxy.dir / "logs" / "audit.jsonl")]


def events(proxy, kind):
    return [e for e in audit(proxy) if e["type"] == kind]


def events_of(proxy, kind, response):
    """The `kind` events of one request, once the writer has them (it writes within ms)."""
    request_id = response.header("x-request-id")
    found = []

    def written():
        found[:] = [e for e in events(proxy, kind) if e.get("request_id") == request_id]
        return bool(found)
    wait_for(written, timeout=3, what=f"{kind} of {request_id}")
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("impersonation")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, config())
    emp_id = setup_site(proxy)
    yield proxy, upstream, emp_id
    proxy.stop()
    upstream.stop()


@pytest.fixture
def fresh(make_proxy, upstream):
    def make(**extra):
        proxy = make_proxy(config(**extra))
        setup_site(proxy)
        return proxy
    return make


def last(upstream):
    return upstream.requests()[-1]


# ---- who may act as whom --------------------------------------------------------------------------

REFUSALS = [
    # (actor, target, fields, code, status)
    ("mgr", "emp", {}, "not_permitted", 403),
    ("admin", "admin", {}, "self", 403),
    ("admin", "ghost", {}, "target_not_found", 404),
    ("admin", "sus", {}, "target_status", 403),
    ("admin", "newbie", {}, "never_logged_in", 403),
    ("admin", "peer", {}, "hierarchy", 403),
    ("hr", "far", {}, "scope", 403),
    ("hr", "evil", {}, "scope", 403),
    ("admin", "nocon", {}, "consent_required", 403),
    ("admin", "emp", {"reason": "too short"}, "reason_required", 422),
    ("admin", "emp", {"reason": "          x          "}, "reason_required", 422),
]


@pytest.mark.parametrize("actor,target,fields,code,status", REFUSALS)
def test_each_refusal_code(site, actor, target, fields, code, status):
    proxy, upstream, _ = site
    person = Admin(proxy, actor)
    response, body = person.start(target, **({"reason": REASON} | fields))
    assert response.status == status, response
    assert body["error"] == code and body["message"]
    assert person.api("GET", "/.actas/api/v1/me")[1]["impersonation"] is None
    denied = events_of(proxy, "impersonation_denied", response)
    assert len(denied) == 1 and denied[0]["reason"] == code


def test_csrf_is_checked_first(site):
    proxy, _, _ = site
    person = Admin(proxy, "mgr")  # would also be not_permitted
    good = person.csrf
    for kwargs in ({"csrf": False}, {"origin": "https://evil.example"}, {"origin": None}, {"wrong_token": True}):
        if kwargs.pop("wrong_token", False):
            person.csrf = "x" * 43
        response, body = person.api("POST", "/.actas/api/v1/impersonation", {"target": "emp", "reason": REASON}, **kwargs)
        person.csrf = good
        assert response.status == 403 and body["error"] == "csrf", kwargs
        assert [e["reason"] for e in events_of(proxy, "impersonation_denied", response)] == ["csrf"]


def test_chaining_is_refused(site):
    proxy, _, _ = site
    person = Admin(proxy, "admin2")
    response, _ = person.start("emp")
    assert response.status == 201
    try:
        response, body = person.start("ghost")  # chaining comes before target_not_found
        assert response.status == 403 and body["error"] == "chaining"
        assert [e["reason"] for e in events_of(proxy, "impersonation_denied", response)] == ["chaining"]
    finally:
        person.api("DELETE", "/.actas/api/v1/impersonation")


def test_scoped_role_may_act_within_subtree(site):
    proxy, upstream, _ = site
    hr = Admin(proxy, "hr")
    response, body = hr.start("emp")
    assert response.status == 201, response
    hr.fetch("/as-hr")
    assert header_values(last(upstream), "X-Forwarded-User") == ["emp"]
    assert header_values(last(upstream), "X-Impersonator-User") == ["hr"]
    assert hr.api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200


def test_user_list_says_why_not(site):
    proxy, _, _ = site
    rows = {r["username"]: r for r in users_api(proxy, login(proxy, "hr"))}
    assert rows["emp"]["impersonable"] is True and rows["emp"]["reason"] is None
    assert rows["far"]["reason"] == "scope"
    assert rows["evil"]["reason"] == "scope"
    assert rows["hr"]["reason"] == "self"
    assert rows["admin"]["reason"] == "hierarchy"
    assert rows["sus"]["reason"] == "target_status"
    assert rows["newbie"]["reason"] == "never_logged_in"
    assert rows["nocon"]["reason"] == "consent_required"
    searched = users_api(proxy, login(proxy, "hr"), q="emma")
    assert [r["username"] for r in searched] == ["emp"]
    # Not an impersonator: no list.
    response = proxy.request(request_bytes("GET", "/.actas/api/v1/users", [session_header(login(proxy, "mgr"))]))
    assert response.status == 403


def test_user_list_page_and_confirmation_page(site):
    proxy, _, _ = site
    admin = Admin(proxy, "admin")
    page = admin.browse("/.actas/users?q=em")
    assert page.status == 200 and b"Emma Employee" in page.body and b"/.actas/users/emp" in page.body
    confirm = admin.browse("/.actas/users/emp")
    assert confirm.status == 200
    assert b'action="/.actas/impersonate"' in confirm.body and b'name="reason"' in confirm.body
    assert b'name="target" value="emp"' in confirm.body


def test_api_tokens_cannot_impersonate(site):
    proxy, _, _ = site
    token = run(["tokens", "create", "admin", "--config", str(proxy.config_path)]).stdout.strip()
    wait_for(lambda: proxy.request(request_bytes("GET", "/x", [("Authorization", f"Bearer {token}")])).status == 200, timeout=3, what="token")
    response = proxy.request(request_bytes("POST", "/.actas/api/v1/impersonation", [
        ("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")], json.dumps({"target": "emp", "reason": REASON}).encode()))
    assert response.status == 403 and json.loads(response.body)["error"] == "interactive_only"


@pytest.mark.parametrize("path", ["/.actas/impersonate", "/.actas/impersonate/exit", "/.actas/impersonate/extend",
                                  "/.actas/consent", "/.actas/api/v1/consent", "/.actas/api/v1/impersonation"])
def test_get_on_state_changing_urls_is_405(site, path):
    proxy, _, _ = site
    admin = Admin(proxy, "admin")
    response = admin.get(path, [("Accept", "application/json")])
    assert response.status == 405, (path, response)
    assert response.header("allow")


# ---- the session, as the application sees it --------------------------------------------------

def test_headers_and_assertion_while_impersonating(site):
    import jwt
    proxy, upstream, emp_id = site
    admin = Admin(proxy, "admin")
    response, body = admin.start("emp", mode="read-write", duration="30m")
    assert response.status == 201
    assert set(body) == {"id", "target", "mode", "started_at", "expires_at"}
    assert body["id"].startswith("imp_") and body["target"]["username"] == "emp" and body["mode"] == "read-write"
    try:
        admin.get("/as-emp", [("Cookie", f"__Host-actas_session={admin.cookie}; mine=admin-own"), ("X-Forwarded-User", "mallory"),
                              ("X-Impersonator-User", "mallory")])
        record = last(upstream)
        assert header_values(record, "X-Forwarded-User") == ["emp"]
        assert header_values(record, "X-Forwarded-Email") == ["emp@example.com"]
        assert header_values(record, "X-Forwarded-Groups") == ["sales"]
        assert header_values(record, "X-Impersonator-User") == ["admin"]
        assert header_values(record, "X-Impersonator-Email") == ["admin@example.com"]
        assert header_values(record, "X-Impersonation-Id") == [body["id"]]
        assert header_values(record, "X-Impersonation-Mode") == ["read-write"]
        assert header_values(record, "X-Impersonation-Expires") == [body["expires_at"]]
        # The administrator's own credentials and app cookies never reach the upstream.
        assert header_values(record, "Cookie") == []
        [token] = header_values(record, "X-ActAs-Jwt-Assertion")
        from test_identity import verify
        claims = verify(proxy, token, audience=f"http://127.0.0.1:{upstream.port}")
        assert 0 < claims["exp"] - claims["iat"] <= 300
        admin_id = me(proxy, admin.cookie)["user"]["id"]
        assert claims["sub"] == emp_id and claims["preferred_username"] == "emp"
        assert claims["act"] == {"sub": admin_id, "preferred_username": "admin", "email": "admin@example.com"}
        assert claims["sid"] == body["id"] and claims["mode"] == "read-write"
        assert "act" not in claims["act"]
        # The console stays the administrator's own.
        mine = me(proxy, admin.cookie)
        assert mine["user"]["username"] == "admin" and mine["impersonation"]["id"] == body["id"]
    finally:
        admin.api("DELETE", "/.actas/api/v1/impersonation")
    admin.fetch("/after-exit")
    assert header_values(last(upstream), "X-Forwarded-User") == ["admin"]
    assert header_values(last(upstream), "X-Impersonator-User") == []
    started = [e for e in events(proxy, "impersonation_started") if e.get("session_id") == body["id"]]
    assert started and started[0]["impersonator"] == "admin" and started[0]["user"] == "emp"


def test_two_administrators_act_as_the_same_user_and_each_returns(site):
    proxy, upstream, _ = site
    first, second = Admin(proxy, "admin"), Admin(proxy, "admin2")
    assert first.start("emp")[0].status == 201
    assert second.start("emp")[0].status == 201
    first.fetch("/one")
    assert header_values(last(upstream), "X-Impersonator-User") == ["admin"]
    second.fetch("/two")
    assert header_values(last(upstream), "X-Impersonator-User") == ["admin2"]
    assert first.api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200
    first.fetch("/one-back")
    assert header_values(last(upstream), "X-Forwarded-User") == ["admin"]
    second.fetch("/two-still")
    assert header_values(last(upstream), "X-Forwarded-User") == ["emp"]
    assert second.api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200
    second.fetch("/two-back")
    assert header_values(last(upstream), "X-Forwarded-User") == ["admin2"]


def test_extend_and_caps(make_proxy, upstream):
    proxy = make_proxy(config(**{"impersonation.max_duration": "2h", "impersonation.default_duration": "1h"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    response, body = admin.api("PATCH", "/.actas/api/v1/impersonation", {"duration": "30m"})
    assert response.status == 404 and body["error"] == "not_impersonating"
    response, body = admin.start("emp", duration="10h")
    assert response.status == 201
    started = parse_time(body["started_at"])
    assert abs(parse_time(body["expires_at"]) - started - 7200) <= 1  # capped at max_duration
    admin.api("DELETE", "/.actas/api/v1/impersonation")
    response, body = admin.start("emp")
    started = parse_time(body["started_at"])
    assert abs(parse_time(body["expires_at"]) - started - 3600) <= 1  # default_duration
    response, body = admin.api("PATCH", "/.actas/api/v1/impersonation", {"duration": "90m"})
    assert response.status == 200 and abs(parse_time(body["expires_at"]) - started - 5400) <= 1  # from the original start
    response, body = admin.api("PATCH", "/.actas/api/v1/impersonation", {"duration": "9h"})
    assert abs(parse_time(body["expires_at"]) - started - 7200) <= 1
    before = me(proxy, admin.cookie)["impersonation"]["expires_at"]
    for bad in ("forever", "-1h", "0s", "", "1h30", 5):
        response, body = admin.api("PATCH", "/.actas/api/v1/impersonation", {"duration": bad})
        assert response.status == 400 and body["error"] == "invalid_duration", bad
    assert me(proxy, admin.cookie)["impersonation"]["expires_at"] == before  # refused extends change nothing
    assert admin.api("PATCH", "/.actas/api/v1/impersonation", {"duration": "1h"}, csrf=False)[0].status == 403
    admin.api("DELETE", "/.actas/api/v1/impersonation")
    response, body = admin.start("emp", duration="soon")
    assert response.status == 400 and body["error"] == "invalid_duration"
    response, body = admin.start("emp", mode="god-mode")
    assert response.status == 400 and body["error"] == "invalid_mode"
    response, body = admin.start("emp", duration=3600)
    assert response.status == 400 and body["error"] == "invalid_duration"
    response, body = admin.start("emp", mode=1)
    assert response.status == 400 and body["error"] == "invalid_mode"


def test_duration_capped_by_consent_expiry(make_proxy, upstream):
    proxy = make_proxy(config(**{"impersonation.default_duration": "1h"}))
    setup_site(proxy)
    granted = run(["consent", "grant", "far", "--hours", "2", "--config", str(proxy.config_path)]).stdout
    consent_ends = parse_time(granted.split("until ")[1].strip())
    person = Admin(proxy, "admin")
    wait_for(lambda: me(proxy, Admin(proxy, "far").cookie)["consent"]["expires_at"] == granted.split("until ")[1].strip(),
             timeout=3, what="the new consent")
    response, body = person.start("far", duration="8h")
    assert response.status == 201
    # Neither the 8 h asked for nor the 1 h default: the consent's end.
    assert abs(parse_time(body["expires_at"]) - consent_ends) <= 2


@pytest.mark.parametrize("setting,asked,expected", [
    ("choose", None, "read-only"), ("choose", "read-write", "read-write"), ("choose", "read-only", "read-only"),
    ("read-only", "read-write", "read-only"), ("read-only", None, "read-only"), ("read-write", None, "read-write"),
])
def test_mode_setting(make_proxy, upstream, setting, asked, expected):
    proxy = make_proxy(config(**{"impersonation.mode": setting}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    fields = {"mode": asked} if asked else {}
    response, body = admin.start("emp", **fields)
    assert response.status == 201 and body["mode"] == expected
    posted = proxy.request(request_bytes("POST", "/write", [session_header(admin.cookie), ("Accept", "application/json")], b"x=1"))
    if expected == "read-only":
        assert posted.status == 403 and json.loads(posted.body)["error"] == "read_only"
    else:
        assert posted.status == 200
    admin.fetch("/mode")
    assert header_values(last(upstream), "X-Impersonation-Mode") == [expected]


def parse_time(text):
    import datetime
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---- consent ------------------------------------------------------------------------------------

@pytest.mark.parametrize("hours,ok", [(1, True), (168, True), (0, False), (169, False), (-1, False), (1.5, False),
                                      ("24", False), (True, False), (None, False)])
def test_consent_bounds_api(site, hours, ok):
    proxy, _, _ = site
    user = Admin(proxy, "nocon")
    response, body = user.api("POST", "/.actas/api/v1/consent", {"hours": hours} if hours is not None else {})
    if ok:
        assert response.status == 200 and body["active"] is True
        assert abs(parse_time(body["expires_at"]) - time.time() - hours * 3600) < 60
        assert user.api("DELETE", "/.actas/api/v1/consent")[1] == {"active": False, "expires_at": None}
    else:
        assert response.status == 400 and body["error"] == "invalid_hours" and body["message"], hours


def test_consent_bounds_cli(site):
    proxy, _, _ = site
    from test_identity import subprocess_run
    for hours in ("0", "169", "-3"):
        result = subprocess_run(["consent", "grant", "nocon", "--hours", hours, "--config", str(proxy.config_path)])
        assert result.returncode != 0 and "hours" in result.stderr.lower(), hours
    result = subprocess_run(["consent", "grant", "sus", "--hours", "2", "--config", str(proxy.config_path)])
    assert result.returncode != 0 and "suspended" in result.stderr
    import_users(proxy, [{"username": "gone", "status": "deleted"}])
    result = subprocess_run(["consent", "grant", "gone", "--hours", "2", "--config", str(proxy.config_path)])
    assert result.returncode != 0 and "deleted" in result.stderr


def test_consent_needs_csrf_and_shows_on_account_page(site):
    proxy, _, _ = site
    user = Admin(proxy, "nocon")
    assert user.api("POST", "/.actas/api/v1/consent", {"hours": 2}, csrf=False)[0].status == 403
    granted = user.form("/.actas/consent", {"hours": "24"})
    assert granted.status == 303
    page = user.browse("/.actas/")
    assert b"Allowed" in page.body and b"Revoke now" in page.body
    response = user.form("/.actas/consent", {"custom_hours": "500"})
    assert response.status == 400
    revoked = user.form("/.actas/consent", {"action": "revoke"})
    assert me(proxy, user.cookie)["consent"] == {"active": False, "expires_at": None}
    assert [e["user"] for e in events_of(proxy, "consent_granted", granted)] == ["nocon"]
    assert [e["user"] for e in events_of(proxy, "consent_revoked", revoked)] == ["nocon"]


def test_consent_off_needs_no_consent(make_proxy, upstream):
    proxy = make_proxy(config(**{"impersonation.consent": "off"}))
    import_users(proxy, USERS)
    admin = Admin(proxy, "admin")
    response, _ = admin.start("nocon")
    assert response.status == 201


# ---- every way a session ends ----------------------------------------------------------------

def assert_notice(admin, upstream, reason):
    """First request after an announced end: not forwarded; navigation → 303, else 403."""
    before = len(upstream.requests())
    navigation = admin.browse("/first-after-end")
    assert navigation.status == 303, navigation
    location = navigation.header("location")
    assert location.startswith("/.actas/ended?id=imp_")
    page = admin.browse(location)
    assert page.status == 200 and b"has ended" in page.body
    assert len(upstream.requests()) == before
    # After that the administrator browses as themselves again.
    admin.fetch("/as-myself")
    assert header_values(last(upstream), "X-Forwarded-User") == [admin.username]


def started(admin, target="emp", **fields):
    response, body = admin.start(target, **fields)
    assert response.status == 201, response
    return body["id"]


def end_event(proxy, session_id):
    wait_for(lambda: any(e.get("session_id") == session_id for e in events(proxy, "impersonation_ended")), timeout=3, what="end event")
    return [e for e in events(proxy, "impersonation_ended") if e.get("session_id") == session_id][0]


def assert_next_navigation_shows_the_end(proxy, admin, session, path, sentence):
    """SPEC §7: the next page load after an end is sent to the ended page, which says why, and
    nothing of it reaches the upstream."""
    before = len(Upstream_records(proxy))
    navigation = admin.browse(path)
    assert navigation.status == 303 and navigation.header("location") == f"/.actas/ended?id={session}"
    page = admin.browse(navigation.header("location"))
    assert page.status == 200 and sentence.encode() in page.body
    assert len(Upstream_records(proxy)) == before


def test_end_by_exit_goes_straight_back(fresh):
    proxy = fresh()
    upstream_port = proxy.upstream_port
    admin = Admin(proxy, "admin")
    session = started(admin)
    response = admin.form("/.actas/impersonate/exit", {})
    assert response.status == 303
    admin.fetch("/straight-back")
    record = [r for r in Upstream_records(proxy) if r["target"] == "/straight-back"][0]
    assert header_values(record, "X-Forwarded-User") == ["admin"]
    assert end_event(proxy, session)["end_reason"] == "exit"


def Upstream_records(proxy):
    path = proxy.dir.parent / f"upstream-{proxy.upstream_port}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_end_by_expiry(make_proxy, upstream):
    proxy = make_proxy(config(**{"impersonation.max_duration": "2s", "impersonation.default_duration": "2s"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    session = started(admin)
    admin.fetch("/in-time")
    assert header_values(last(upstream), "X-Forwarded-User") == ["emp"]
    time.sleep(2.3)
    response = admin.fetch("/too-late")
    assert response.status == 403
    body = json.loads(response.body)
    assert body["error"] == "impersonation_ended" and body["end_reason"] == "expired"
    assert all(r["target"] != "/too-late" for r in upstream.requests())
    admin.fetch("/as-myself")
    assert header_values(last(upstream), "X-Forwarded-User") == ["admin"]
    assert end_event(proxy, session)["end_reason"] == "expired"


def test_end_by_consent_revocation(fresh):
    proxy = fresh()
    upstream = None
    admin = Admin(proxy, "admin")
    session = started(admin)
    emp = Admin(proxy, "emp")
    response, _ = emp.api("DELETE", "/.actas/api/v1/consent")
    assert response.status == 200
    assert_next_navigation_shows_the_end(proxy, admin, session, "/after-revocation", "The user revoked their consent.")
    assert end_event(proxy, session)["end_reason"] == "consent_revoked"


def expire_consent_in_store(proxy, username, seconds):
    """Consent can only be granted for whole hours: move its expiry in the store, as time would."""
    db = sqlite3.connect(proxy.dir / "data" / "actas.db")
    user_id = db.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()[0]
    db.execute("UPDATE consents SET expires_at = ? WHERE user_id = ?", (time.time() + seconds, user_id))
    db.execute("INSERT INTO changes (kind, key, at) VALUES ('consent', ?, ?)", (user_id, time.time()))
    db.commit()
    db.close()


def test_end_by_consent_expiry(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    session = started(admin)
    expire_consent_in_store(proxy, "emp", 1.0)
    time.sleep(1.6)
    response = admin.fetch("/after-consent-expiry")
    assert response.status == 403 and json.loads(response.body)["end_reason"] == "consent_expired"
    assert all(r["target"] != "/after-consent-expiry" for r in Upstream_records(proxy))
    assert end_event(proxy, session)["end_reason"] == "consent_expired"
    wait_for(lambda: any(e.get("user") == "emp" for e in events(proxy, "consent_expired")), timeout=3, what="consent_expired event")


@pytest.mark.parametrize("command,reason", [(["users", "suspend", "emp"], "target_suspended"),
                                            (["users", "delete", "emp"], "target_deleted"),
                                            (["users", "set", "admin", "--role", "employee"], "actor_lost_permission")])
def test_end_by_directory_change_elsewhere(fresh, command, reason):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    session = started(admin)
    run([*command, "--config", str(proxy.config_path)])
    changed_at = time.time()
    # Keep asking right away: the change reaches the server through the store's change feed.
    answers = []
    while time.time() - changed_at < 1.5:
        response = admin.fetch(f"/after/{len(answers)}")
        answers.append(response)
        if response.status == 403:
            break
    assert answers[-1].status == 403, [r.status for r in answers]
    body = json.loads(answers[-1].body)
    assert body["error"] == "impersonation_ended" and body["end_reason"] == reason and body["message"]
    late = [r for r in Upstream_records(proxy) if header_values(r, "X-Impersonator-User") and r["t"] > changed_at + 1.0]
    assert late == [], "forwarded as the target more than a second after the change"
    assert end_event(proxy, session)["end_reason"] == reason


def test_end_by_operator_with_notice_page(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    session = started(admin)
    listed = run(["sessions", "list", "--active", "--config", str(proxy.config_path)]).stdout
    assert session in listed
    run(["sessions", "end", session, "--config", str(proxy.config_path)])
    assert end_event(proxy, session)["end_reason"] == "ended_by_operator"
    assert_next_navigation_shows_the_end(proxy, admin, session, "/next", "An operator ended the session.")
    admin.fetch("/as-admin")
    assert header_values(Upstream_records(proxy)[-1], "X-Forwarded-User") == ["admin"]
    assert session not in run(["sessions", "list", "--active", "--config", str(proxy.config_path)]).stdout


def test_end_by_sign_out(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    session = started(admin)
    body = urllib.parse.urlencode({"csrf_token": admin.csrf}).encode()
    response = proxy.request(request_bytes("POST", "/.actas/logout", [
        session_header(admin.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN)], body))
    assert response.status == 303
    assert end_event(proxy, session)["end_reason"] == "actor_signed_out"
    again = Admin(proxy, "admin")
    assert me(proxy, again.cookie)["impersonation"] is None
    again.fetch("/as-admin-again")  # no notice after sign-out
    assert header_values(Upstream_records(proxy)[-1], "X-Forwarded-User") == ["admin"]


@pytest.mark.h1_only("raw HTTP/1.1 socket (keep-alive connections, bytes on the wire)")
def test_revocation_while_requests_are_in_flight(fresh):
    """50+ requests on several connections while the target revokes consent: nothing that
    reaches the upstream after the revocation call returned carries the administrator."""
    proxy = fresh()
    admin = Admin(proxy, "admin")
    started(admin)
    emp = Admin(proxy, "emp")
    stop = threading.Event()
    revoked_at = []
    counts = []

    errors = []

    def hammer():
        sent = 0
        try:
            with proxy.connect() as sock:
                while not stop.is_set():
                    sock.sendall(request_bytes("GET", f"/inflight/{sent}", [session_header(admin.cookie), ("Accept", "application/json")]))
                    read_response(sock)
                    sent += 1
        except Exception as error:  # reported below: a thread's exception would otherwise vanish
            errors.append(repr(error))
        counts.append(sent)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    response, _ = emp.api("DELETE", "/.actas/api/v1/consent")
    revoked_at.append(time.time())
    assert response.status == 200
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(counts) >= 50
    records = [r for r in Upstream_records(proxy) if r["target"].startswith("/inflight/")]
    impersonated = [r for r in records if header_values(r, "X-Impersonator-User")]
    assert impersonated, "some requests went out as the target before the revocation"
    late = [r for r in impersonated if r["t"] > revoked_at[0]]
    assert late == [], f"{len(late)} requests reached the upstream as the target after revocation returned"


# ---- read-only and hidden paths ------------------------------------------------------------------

READ_ONLY_REFUSED = [
    ("POST", "/form", []), ("PUT", "/thing", []), ("DELETE", "/thing", []), ("PATCH", "/thing", []),
    ("GET", "/thing", [("X-HTTP-Method-Override", "DELETE")]), ("POST", "/thing", [("X-HTTP-Method-Override", "GET")]),
    ("GET", "/thing", [("X-Method-Override", "PUT")]), ("GET", "/thing", [("x_http_method", "patch")]),
    ("GET", "/ws", [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("Sec-WebSocket-Version", "13")]),
]


@pytest.mark.h1_only("raw HTTP/1.1 socket and a WebSocket upgrade among the refusals")
def test_read_only_mode(make_proxy, upstream):
    proxy = make_proxy(config(**{"impersonation.mode": "read-only"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    started(admin)
    for method, path, extra in READ_ONLY_REFUSED:
        before = len(upstream.requests())
        response = proxy.request(request_bytes(method, path, [session_header(admin.cookie), ("Accept", "application/json"), *extra],
                                               b"x=1" if method != "GET" else b""))
        assert response.status == 403, (method, path, extra, response)
        assert json.loads(response.body)["error"] == "read_only"
        assert len(upstream.requests()) == before
    for method in ("GET", "HEAD", "OPTIONS"):
        with proxy.connect() as sock:
            sock.sendall(request_bytes(method, "/safe", [session_header(admin.cookie), ("X-HTTP-Method-Override", "GET")]))
            assert read_response(sock, method=method).status == 200, method
    sent = [r for r in upstream.requests() if r["target"] == "/safe"][-1]
    assert header_values(sent, "X-Impersonation-Mode") == ["read-only"]
    import jwt
    assert jwt.decode(header_values(sent, "X-ActAs-Jwt-Assertion")[0], options={"verify_signature": False})["mode"] == "read-only"
    denied = events(proxy, "request_denied")
    assert denied and all(e["reason"] == "read_only" for e in denied)
    assert denied[0]["impersonator"] == "admin" and denied[0]["user"] == "emp"


HIDDEN = ["/private/notes", "/PRIVATE/notes", "/Private/x", "/account/security", "/account/security/2fa", "/account/SECURITY",
          "/public/../private/x", "/public/%2e%2e/private/x", "/public/%2E%2e/private/x", "/x/..;/private/y", "/private;jsessionid=1/x",
          "//private/x", "///private/x", "/./private/x", "/%70rivate/x", "/public/./../private/x"]
BAD_ENCODING = ["/public/..%2fprivate/x", "/public/..%2Fprivate/x", "/private%2fx", "/public/..%5cprivate/x", "/public%00/x",
                "/public/%252e%252e/private/x", "/x%252fy"]


@pytest.mark.parametrize("path", HIDDEN)
def test_hidden_paths_cannot_be_reached_by_any_spelling(site, path):
    proxy, upstream, _ = site
    admin = Admin(proxy, "admin")
    started(admin)
    try:
        before = len(upstream.requests())
        response = admin.fetch(path)
        assert response.status == 403, (path, response)
        assert json.loads(response.body)["error"] == "hidden_path"
        assert len(upstream.requests()) == before
        assert [e["reason"] for e in events_of(proxy, "request_denied", response)] == ["hidden_path"]
    finally:
        admin.api("DELETE", "/.actas/api/v1/impersonation")


@pytest.mark.parametrize("path", BAD_ENCODING)
def test_ambiguous_encodings_are_refused_while_impersonating(site, path):
    proxy, upstream, _ = site
    admin = Admin(proxy, "admin")
    started(admin)
    try:
        before = len(upstream.requests())
        response = admin.fetch(path)
        assert response.status == 400, (path, response)
        assert json.loads(response.body)["error"] == "bad_path_encoding"
        assert len(upstream.requests()) == before
        assert [e["reason"] for e in events_of(proxy, "request_denied", response)] == ["bad_path_encoding"]
    finally:
        admin.api("DELETE", "/.actas/api/v1/impersonation")


def test_normalised_path_is_what_is_forwarded(site):
    proxy, upstream, _ = site
    admin = Admin(proxy, "admin")
    started(admin)
    try:
        for raw, forwarded in [("/a/./b/../c?x=%2e&y=1", "/a/c?x=%2e&y=1"), ("/a/b/../../../c", "/c"), ("//docs///page", "/docs/page"), ("/%7euser/%41bc", "/~user/Abc"),
                               ("/shop;jsessionid=9/cart", "/shop/cart")]:
            assert admin.fetch(raw).status == 200, raw
            assert last(upstream)["target"] == forwarded, raw
    finally:
        admin.api("DELETE", "/.actas/api/v1/impersonation")
    # Not impersonating: the path goes as sent, and hidden paths are the app's business.
    admin.fetch("/private/notes")
    assert last(upstream)["target"] == "/private/notes"


# ---- cookie isolation -----------------------------------------------------------------------------

def test_cookies_set_while_impersonating_stay_in_that_session(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    own = ("Cookie", f"__Host-actas_session={admin.cookie}; app_session=admin-own")
    started(admin)
    response = proxy.request(request_bytes("GET", "/set-cookie?name=app_session&value=emp-session", [own]))
    assert response.status == 200
    # SPEC §7: the HttpOnly cookie never reaches the administrator's browser; one scripts may read does.
    assert response.all("set-cookie") == ["second=2; Path=/"]
    proxy.request(request_bytes("GET", "/with-jar", [own]))
    record = Upstream_records(proxy)[-1]
    assert header_values(record, "Cookie") == ["app_session=emp-session; second=2"]
    assert "admin-own" not in json.dumps(record)
    admin.api("DELETE", "/.actas/api/v1/impersonation")
    proxy.request(request_bytes("GET", "/after-exit", [own]))
    record = Upstream_records(proxy)[-1]
    assert header_values(record, "Cookie") == ["app_session=admin-own"]
    # A new session starts with an empty jar.
    started(admin)
    proxy.request(request_bytes("GET", "/new-session", [own]))
    assert header_values(Upstream_records(proxy)[-1], "Cookie") == []


# ---- WebSockets -----------------------------------------------------------------------------------

@pytest.mark.h1_only("WebSocket upgrades stay on HTTP/1.1 (SPEC 10.4: no RFC 8441)")
def test_websocket_is_closed_with_1008_within_a_second_of_the_end(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    session = started(admin)
    sock = proxy.connect()
    sock.sendall(request_bytes("GET", "/ws", [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
                                               session_header(admin.cookie)]))
    assert read_response(sock).status == 101
    sock.sendall(b"ping")
    assert sock.recv(4) == b"ping"
    run(["sessions", "end", session, "--config", str(proxy.config_path)])
    ended = time.time()
    sock.settimeout(3)
    data = b""
    try:
        while True:
            chunk = sock.recv(64)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    elapsed = time.time() - ended
    assert data[:2] == b"\x88" + bytes([len(data) - 2]) and data[2:4] == b"\x03\xf0", data  # close, 1008
    assert elapsed < 1.5  # the CLI's change reaches the server through the feed (≤ 0.2 s), then ≤ 0.25 s sweeps
    sock.close()


# ---- the whole flow in a browser -----------------------------------------------------------------

@pytest.mark.h1_only("Chromium picks its own protocol (test_http2.py has the h2 browser test)")
def test_browser_flow_sign_in_find_confirm_browse_exit(tmp_path):
    from browser import chromium_driver, screenshot, sign_in
    from conftest import free_port
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    from conftest import PASSWORD

    proxy = Proxy(tmp_path, free_port(), {"demo.enabled": True, "auth.public_paths": ["/static/*"]})
    try:
        setup_site(proxy)
        driver = chromium_driver()
        try:
            base = f"https://localhost:{proxy.https_port}"
            sign_in(driver, base, "admin", PASSWORD)
            driver.get(base + "/.actas/users")
            driver.find_element(By.ID, "q").send_keys("Emma")
            driver.find_element(By.CSS_SELECTOR, "form.search button").click()
            # The unfiltered list already links Emma: wait for the search's own page, or the
            # click can land on the old page as it unloads (a stale element).
            WebDriverWait(driver, 10).until(lambda d: "q=Emma" in d.current_url)
            WebDriverWait(driver, 10).until(EC.element_to_be_clickable((By.LINK_TEXT, "Act as Emma Employee"))).click()
            WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "reason")))
            driver.find_element(By.ID, "reason").send_keys(REASON)
            screenshot(driver, "impersonation-confirm")
            driver.find_element(By.CSS_SELECTOR, "form[action='/.actas/impersonate'] button").click()
            WebDriverWait(driver, 10).until(lambda d: d.current_url == base + "/")
            table = driver.find_element(By.TAG_NAME, "table").text
            assert "X-Forwarded-User emp" in table and "X-Impersonator-User admin" in table
            screenshot(driver, "impersonation-as-target")
            driver.get(base + "/.actas/")
            assert "You are acting as Emma Employee" in driver.page_source
            driver.find_element(By.CSS_SELECTOR, "form[action='/.actas/impersonate/exit'] button").click()
            # The form POST ends the session; only then is "/" the administrator's own view.
            WebDriverWait(driver, 10).until(
                lambda d: d.execute_script("return fetch('/.actas/api/v1/me').then(r => r.json())")["impersonation"] is None)
            driver.get(base + "/")
            table = driver.find_element(By.TAG_NAME, "table").text
            assert "X-Forwarded-User admin" in table and "X-Impersonator-User (absent)" in table
        finally:
            driver.quit()
    finally:
        proxy.stop()


def test_what_counts_as_a_navigation_for_the_end_notice(fresh):
    """SPEC §7: GET with Sec-Fetch-Mode: navigate, or (without that header) Accept: text/html."""
    proxy = fresh()
    cases = [
        ([("Accept", "text/html")], "GET", 303),
        ([("Accept", "text/html"), ("Sec-Fetch-Mode", "cors")], "GET", 403),
        ([("Accept", "text/html")], "POST", 403),
        ([("Sec-Fetch-Mode", "navigate"), ("Accept", "*/*")], "GET", 303),
    ]
    for headers, method, status in cases:
        admin = Admin(proxy, "admin")
        session = started(admin)
        run(["sessions", "end", session, "--config", str(proxy.config_path)])
        end_event(proxy, session)
        response = proxy.request(request_bytes(method, "/next", [session_header(admin.cookie), *headers], b"x" if method == "POST" else b""))
        assert response.status == status, (headers, method, response)
        if status == 403:
            body = json.loads(response.body)
            assert body["error"] == "impersonation_ended" and body["end_reason"] == "ended_by_operator" and body["message"]


def test_the_console_never_acts_as_the_target(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    started(admin)
    emp = Admin(proxy, "emp")
    before = me(proxy, emp.cookie)["consent"]
    assert admin.api("POST", "/.actas/api/v1/consent", {"hours": 3})[0].status == 200
    assert admin.api("DELETE", "/.actas/api/v1/consent")[0].status == 200
    assert me(proxy, emp.cookie)["consent"] == before and before["active"] is True
    assert me(proxy, admin.cookie)["user"]["username"] == "admin"
    assert admin.api("GET", "/.actas/api/v1/me")[1]["impersonation"] is not None  # still acting as emp


def test_tokens_neither_start_extend_end_nor_carry_an_impersonation(fresh):
    proxy = fresh()
    token = run(["tokens", "create", "admin", "--config", str(proxy.config_path)]).stdout.strip()
    auth = ("Authorization", f"Bearer {token}")
    wait_for(lambda: proxy.request(request_bytes("GET", "/x", [auth])).status == 200, timeout=3, what="token")
    admin = Admin(proxy, "admin")
    started(admin)  # by cookie
    for method in ("PATCH", "DELETE"):
        response = proxy.request(request_bytes(method, "/.actas/api/v1/impersonation", [auth, ("Content-Type", "application/json")],
                                               json.dumps({"duration": "1h"}).encode() if method == "PATCH" else b""))
        assert response.status == 403 and json.loads(response.body)["error"] == "interactive_only", method
    proxy.request(request_bytes("GET", "/by-token", [auth]))
    record = Upstream_records(proxy)[-1]
    assert header_values(record, "X-Forwarded-User") == ["admin"] and header_values(record, "X-Impersonator-User") == []
    # Consent by token needs no CSRF token.
    emp_token = run(["tokens", "create", "emp", "--config", str(proxy.config_path)]).stdout.strip()
    wait_for(lambda: proxy.request(request_bytes("GET", "/x", [("Authorization", f"Bearer {emp_token}")])).status == 200,
             timeout=3, what="token")
    response = proxy.request(request_bytes("POST", "/.actas/api/v1/consent", [("Authorization", f"Bearer {emp_token}"),
                                                                              ("Content-Type", "application/json")], b'{"hours": 5}'))
    assert response.status == 200 and json.loads(response.body)["active"] is True


@pytest.mark.h1_only("raw HTTP/1.1 socket (keep-alive connections, bytes on the wire)")
def test_streaming_response_is_cut_when_the_session_ends(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    session = started(admin)
    sock = proxy.connect()
    sock.sendall(request_bytes("GET", "/big?bytes=200000000", [session_header(admin.cookie)]))
    sock.settimeout(5)
    received = sock.recv(65536)
    assert received.startswith(b"HTTP/1.1 200")
    run(["sessions", "end", session, "--config", str(proxy.config_path)])
    ended = time.time()
    total = len(received)
    try:
        while True:
            time.sleep(0.01)  # a slow reader: the response cannot have finished on its own
            chunk = sock.recv(65536)
            if not chunk:
                break
            total += len(chunk)
    except OSError:
        pass
    assert time.time() - ended < 3
    assert total < 200_000_000
    sock.close()


def test_refusals_on_the_html_form_say_why(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    refused = admin.form("/.actas/impersonate", {"target": "nocon", "reason": REASON})
    assert refused.status == 403 and b"has not given consent" in refused.body
    missing = admin.form("/.actas/impersonate", {"target": "ghost", "reason": REASON})
    assert missing.status == 404 and b"no such user" in missing.body
    page = admin.browse("/.actas/users")
    assert b'data-code="consent_required"' in page.body and b'data-code="self"' in page.body
    sessions = admin.browse("/.actas/sessions")
    assert sessions.status == 200
    # Extend by form, as the banner's no-JavaScript button does.
    started(admin, duration="30m")
    before = me(proxy, admin.cookie)["impersonation"]["expires_at"]
    extended = admin.form("/.actas/impersonate/extend", {"duration": "2h", "rd": "/somewhere"})
    assert extended.status == 303 and extended.header("location") == "/somewhere"
    after = me(proxy, admin.cookie)["impersonation"]
    assert parse_time(after["expires_at"]) - parse_time(after["started_at"]) == pytest.approx(7200, abs=2)
    assert after["expires_at"] != before
