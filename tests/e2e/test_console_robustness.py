"""Nothing a user sends to the console, and nothing in the store rows it shows, may end the
process (issue 14 item 1). The exact sequence that crashed it, then a randomised walk over the
console's pages and JSON API that checks after every step that the proxy is alive and its
admin `/healthz` answers."""
import html
import json
import urllib.parse

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import ORIGIN, Proxy, Upstream, admin_get, login_form, post_login, read_response, request_bytes, run, session_header
from test_impersonation import REASON, Admin, config, fresh, setup_site  # noqa: F401 (fresh is a fixture)


def assert_alive(proxy):
    assert proxy.process.poll() is None, f"actas exited with {proxy.process.returncode}: {proxy.stderr_path.read_text()[-4000:]}"
    try:
        status = admin_get(proxy.admin_port, "/healthz")[0]
    except OSError as error:
        raise AssertionError(f"/healthz did not answer ({error}): {proxy.stderr_path.read_text()[:4000]}") from error
    assert status == 200


# ---- the sequence from the report ------------------------------------------------------------------

def test_target_opens_console_after_two_sessions_by_one_admin(fresh):
    """One administrator acted as Emma twice (the normal case); Emma opens her account page."""
    proxy = fresh()
    admin = Admin(proxy, "admin")
    ids = []
    for _ in range(2):
        response, body = admin.start("emp")
        assert response.status == 201, response
        ids.append(body["id"])
        assert admin.api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200
    emp = Admin(proxy, "emp")
    page = emp.get("/.actas/", [("Accept", "text/html")])
    assert_alive(proxy)
    assert page.status == 200, page
    # Both sessions are listed, each naming the administrator.
    assert all(session_id.encode() in page.body for session_id in ids)
    assert page.body.count(b"Ada Admin") >= 2
    sessions = emp.get("/.actas/sessions", [("Accept", "text/html")])
    assert sessions.status == 200, sessions
    response, listed = emp.api("GET", "/.actas/api/v1/sessions")
    assert response.status == 200 and {s["id"] for s in listed["sessions"]} >= set(ids), listed
    for session_id in ids:
        assert emp.get(f"/.actas/sessions/{session_id}", [("Accept", "text/html")]).status == 200
        assert emp.api("GET", f"/.actas/api/v1/sessions/{session_id}/events")[0].status == 200
    assert emp.api("GET", "/.actas/api/v1/me")[0].status == 200
    assert_alive(proxy)


# ---- randomised ----------------------------------------------------------------------------------

ODD_TEXT = st.one_of(
    st.sampled_from([
        "", " ", "%", "%zz", "%00", "%ff%fe", "\u202e", "é", "\U0001F600", "a" * 5000, "..", "../..", "//evil.test",
        "/\\evil", "/.actas/../..//evil.test", "%2e%2e/%2e%2e//evil", "null", "[]", "{}", "0", "-1", "1e999",
        "99999999999999999999h", "9223372036854775807s", "1.5h", "-5m", "0s", "NaN", "imp_", "imp_x", "emp", "admin",
    ]),
    st.text(max_size=40),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(allow_nan=False), ODD_TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(ODD_TEXT, children, max_size=4)),
    max_leaves=8,
)
FIELDS = ["target", "reason", "mode", "duration", "hours", "csrf_token", "rd", "q"]
API_BODIES = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5).map(lambda d: json.dumps(d).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.just(b"{" * 2000),
    st.just(b""),
)
CONSOLE_PAGES = ["/.actas/", "/.actas/users", "/.actas/sessions", "/.actas/api/v1/me", "/.actas/api/v1/users",
                 "/.actas/api/v1/sessions", "/.actas/ended", "/.actas/login", "/.actas/logout", "/.actas/consent",
                 "/.actas/impersonate", "/.actas/impersonate/exit", "/.actas/impersonate/extend",
                 "/.actas/api/v1/consent", "/.actas/api/v1/impersonation", "/.actas/users/emp", "/.actas/users/",
                 "/.actas", "/.actas/nope", "/.well-known/actas/jwks.json", "/.actas/banner.js"]
METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"]


def query_of(value):
    """Odd query strings, some percent-encoded and some raw (the parser may refuse raw bytes)."""
    return urllib.parse.quote(value, safe="=&%/?")


TARGETS = ["emp", "far", "admin2", "newbie", "nocon", "sus", "ghost", "admin"]


@settings(max_examples=8, stateful_step_count=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
class ConsoleWalk(RuleBasedStateMachine):
    """Two administrators and several targets click and script their way around the console."""

    site = None  # (proxy, people) shared by all runs: building a site takes seconds

    @initialize()
    def setup(self):
        proxy, people = ConsoleWalk.site
        self.proxy = proxy
        self.people = people
        self.session_ids = ["imp_nope", "x", "%2e%2e", "a" * 300]

    def person(self, name):
        return self.people[name]

    def send(self, method, path, headers=(), body=b""):
        with self.proxy.connect(timeout=20) as sock:
            sock.sendall(request_bytes(method, path, list(headers), body))
            response = read_response(sock, method)
        assert response.status != 500, response
        return response

    def as_person(self, name, method, path, body=b"", csrf=True, accept="application/json", extra=()):
        person = self.person(name)
        headers = [session_header(person.cookie), ("Accept", accept), ("Origin", ORIGIN)]
        if csrf:
            headers.append(("X-CSRF-Token", person.csrf))
        if body:
            headers.append(("Content-Type", "application/json"))
        return self.send(method, path, headers + list(extra), body)

    @invariant()
    def alive(self):
        if hasattr(self, "proxy"):
            assert_alive(self.proxy)

    @rule(names=st.lists(st.sampled_from(["admin", "hr", "emp", "far", "admin2"]), min_size=1, max_size=3, unique=True),
          html=st.booleans())
    def own_pages(self, names, html):
        """Everyone's own account, history and identity: the pages that show store rows."""
        for name in names:
            for path in ["/.actas/", "/.actas/sessions", "/.actas/api/v1/sessions", "/.actas/api/v1/me"]:
                response = self.as_person(name, "GET", path, accept="text/html" if html else "application/json")
                assert response.status == 200, (name, path, response)

    @rule(name=st.sampled_from(["admin", "hr", "emp", "far"]), path=st.sampled_from(CONSOLE_PAGES), q=ODD_TEXT,
          method=st.sampled_from(METHODS), html=st.booleans())
    def console_page(self, name, path, q, method, html):
        target = path + ("?q=" + query_of(q) + "&rd=" + query_of(q) + "&id=" + query_of(q) if q else "")
        self.as_person(name, method, target, accept="text/html" if html else "application/json")
        if method == "POST" and path == "/.actas/logout":
            self.people[name] = Admin(self.proxy, name)  # a scripted sign-out, as sign_out_and_back

    @rule(name=st.sampled_from(["admin", "hr", "emp"]),
          method=st.sampled_from(["POST", "PATCH", "DELETE"]),
          path=st.sampled_from(["/.actas/api/v1/impersonation", "/.actas/api/v1/consent"]), body=API_BODIES,
          csrf=st.booleans())
    def api_call(self, name, method, path, body, csrf):
        self.as_person(name, method, path, body=body, csrf=csrf)

    @rule(name=st.sampled_from(["admin", "hr"]), whom=st.one_of(st.sampled_from(TARGETS), ODD_TEXT),
          mode=st.one_of(st.none(), st.sampled_from(["read-only", "read-write", "rw", ""])),
          duration=st.one_of(st.none(), st.sampled_from(["1m", "2h", "30s", "999h", "", "0s"]), ODD_TEXT))
    def start(self, name, whom, mode, duration):
        body = {"target": whom, "reason": REASON}
        if mode is not None:
            body["mode"] = mode
        if duration is not None:
            body["duration"] = duration
        response = self.as_person(name, "POST", "/.actas/api/v1/impersonation", body=json.dumps(body).encode())
        if response.status == 201:
            self.session_ids.append(json.loads(response.body)["id"])

    @rule(name=st.sampled_from(["admin", "hr"]), duration=st.one_of(st.sampled_from(["1m", "3h", ""]), ODD_TEXT))
    def extend(self, name, duration):
        self.as_person(name, "PATCH", "/.actas/api/v1/impersonation", body=json.dumps({"duration": duration}).encode())

    @rule(name=st.sampled_from(["admin", "hr"]), form=st.booleans(), rd=ODD_TEXT)
    def exit(self, name, form, rd):
        if form:
            person = self.person(name)
            body = urllib.parse.urlencode({"csrf_token": person.csrf, "rd": rd}).encode()
            self.send("POST", "/.actas/impersonate/exit", [
                session_header(person.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN),
                ("Accept", "text/html")], body)
        else:
            self.as_person(name, "DELETE", "/.actas/api/v1/impersonation")

    @rule(name=st.sampled_from(["emp", "far", "admin2"]), hours=st.one_of(st.integers(-5, 400), st.just(24)),
          revoke=st.booleans(), form=st.booleans())
    def consent(self, name, hours, revoke, form):
        person = self.person(name)
        if form:
            fields = {"csrf_token": person.csrf, **({"action": "revoke"} if revoke else {"hours": str(hours)})}
            self.send("POST", "/.actas/consent", [
                session_header(person.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN),
                ("Accept", "text/html")], urllib.parse.urlencode(fields).encode())
        elif revoke:
            self.as_person(name, "DELETE", "/.actas/api/v1/consent")
        else:
            self.as_person(name, "POST", "/.actas/api/v1/consent", body=json.dumps({"hours": hours}).encode())

    @rule(name=st.sampled_from(["admin", "hr", "emp", "far"]), data=st.data(), html=st.booleans())
    def session_views(self, name, data, html):
        session_id = data.draw(st.one_of(st.sampled_from(self.session_ids), ODD_TEXT))
        encoded = urllib.parse.quote(session_id, safe="")
        accept = "text/html" if html else "application/json"
        self.as_person(name, "GET", f"/.actas/sessions/{encoded}", accept=accept)
        self.as_person(name, "GET", f"/.actas/api/v1/sessions/{encoded}/events", accept=accept)
        self.as_person(name, "GET", f"/.actas/ended?id={encoded}", accept=accept)

    @rule(name=st.sampled_from(["admin", "hr"]), path=st.sampled_from(["/", "/x?y=1", "/private/a", "/%2e%2e/x"]),
          navigate=st.booleans())
    def app_request(self, name, path, navigate):
        extra = [("Sec-Fetch-Mode", "navigate")] if navigate else []
        self.as_person(name, "GET", path, accept="text/html" if navigate else "application/json", extra=extra)

    @rule(name=st.sampled_from(["admin", "hr"]), body=st.one_of(API_BODIES, st.sampled_from([
        b'{"n": 1e999, "m": -1e999, "big": 123456789012345678901234567890}', b"[" * 600 + b"]" * 600,
        b'{"password": "x", "nested": "{\\"token\\": \\"y\\"}"}'])))
    def app_post(self, name, body):
        """Bodies the log keeps (redacted) and the session's audit pages show again."""
        self.as_person(name, "POST", "/api/things", body=body)

    @rule(rd=ODD_TEXT, good=st.booleans())
    def odd_login(self, rd, good):
        response = post_login(self.proxy, "far" if good else "nobody\u202e", rd=rd)
        if response.status == 303:
            location = response.header("location")
            assert location.startswith("/") and not location.startswith("//") and "\\" not in location, location

    @rule(rd=ODD_TEXT)
    def odd_login_page(self, rd):
        self.send("GET", "/.actas/login?rd=" + query_of(rd), [("Accept", "text/html")])

    @rule(body=st.binary(max_size=300), path=st.sampled_from(["/.actas/login", "/.actas/logout", "/.actas/consent"]))
    def anonymous_bodies(self, body, path):
        self.send("POST", path, [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN)], body)

    @rule(name=st.sampled_from(["far", "hr"]), rd=ODD_TEXT)
    def sign_out_and_back(self, name, rd):
        person = self.person(name)
        body = urllib.parse.urlencode({"csrf_token": person.csrf, "rd": rd}).encode()
        self.send("POST", "/.actas/logout", [
            session_header(person.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN),
            ("Accept", "text/html")], body)
        self.people[name] = Admin(self.proxy, name)


BIG = "Ω" * 3000

MANY_USERS = [
    {"username": f"user{i:03d}", "name": ["Zoë Ünïcödé", "李小龙", "\U0001F600 smile", BIG, "", "O'Brien <b>"][i % 6],
     "email": f"user{i}@example.com", "role": "employee", "org_unit": "acme/emea", "groups": ["g" * (1 + i % 50)],
     "last_login": "2026-01-01T00:00:00Z"}
    for i in range(120)
]


@pytest.fixture(scope="module")
def walk_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("robustness")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, config())
    setup_site(proxy)
    # Without passwords: hashing 120 of them would take the debug build minutes.
    many = proxy.dir / "many-users.json"
    many.write_text(json.dumps(MANY_USERS))
    run(["users", "import", str(many), "--config", str(proxy.config_path)])
    for i in range(0, 120, 7):
        run(["consent", "grant", f"user{i:03d}", "--hours", "24", "--config", str(proxy.config_path)])
    people = {name: Admin(proxy, name) for name in ["admin", "hr", "emp", "far", "admin2"]}
    # History: the same administrator several times as the same people, others once.
    for target in ["emp", "emp", "far", "emp", "user007"]:
        response, _ = people["admin"].start(target)
        assert response.status == 201, response
        assert people["admin"].api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200
    yield proxy, people
    proxy.stop()
    upstream.stop()


def test_random_console_walk_keeps_the_process_alive(walk_site):
    ConsoleWalk.site = walk_site
    ConsoleWalk.TestCase().runTest()
    assert_alive(walk_site[0])


# ---- traps the sweep found outside the console ---------------------------------------------------

def test_upstream_cookie_with_an_empty_attribute_while_impersonating(fresh):
    """`Set-Cookie: app=1;; Path=/` (an empty attribute) from the app, kept in the session's
    jar: the jar's attribute parser indexed the empty split of "" and trapped."""
    proxy = fresh()
    admin = Admin(proxy, "admin")
    response, _ = admin.start("emp")
    assert response.status == 201, response
    for value in ["1;;", "1;=", "1; =x", "1;"]:
        answer = admin.fetch("/set-cookie?value=" + urllib.parse.quote(value, safe=""))
        assert_alive(proxy)
        assert answer.status == 200, answer
    assert admin.fetch("/after-cookies").status == 200
    assert_alive(proxy)


# ---- return paths (issue 21 item 11) ---------------------------------------------------------------

# (rd as sent, where the browser may be sent: the resolved path, or "/" when it is not a plain path)
RETURN_PATHS = [
    ("/.actas/../..//evil.test", "/"),
    ("/x/..//evil.test", "/"),
    ("/%2e%2e//evil.test", "/"),
    ("/.actas/%2E%2E/%2e%2e//evil.test?x=1", "/"),
    ("/..;/..;//evil.test", "/"),
    ("/%252e%252e//evil.test", "/"),
    ("/%c0%ae%c0%ae//evil.test", "/"),
    ("/..%2f..%2f/evil.test", "/"),
    ("/a/..%20//evil.test", "/"),
    ("//evil.test", "/"),
    ("/\\evil.test", "/"),
    ("/%5cevil.test", "/"),
    ("/%09/evil.test", "/"),
    ("https://evil.test/", "/"),
    ("/.actas/../orders/42?tab=open", "/orders/42?tab=open"),
    ("/a/b/%2e%2e/c#frag", "/a/c#frag"),
    ("/orders/42?next=/..//evil", "/orders/42?next=/..//evil"),
]


def test_sign_in_honours_only_resolved_return_paths(fresh):
    import re
    proxy = fresh()
    for rd, expected in RETURN_PATHS:
        _, _, page = login_form(proxy, rd)
        field = re.search(rb'name="rd" value="([^"]*)"', page.body).group(1).decode()
        assert html.unescape(field) == expected, (rd, field)
        response = post_login(proxy, "far", rd=rd)
        assert response.status == 303, (rd, response)
        assert response.header("location") == expected, (rd, response.header("location"))
    assert_alive(proxy)


def test_exit_and_extend_honour_only_resolved_return_paths(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    for rd, expected in RETURN_PATHS:
        response, _ = admin.start("emp")
        assert response.status == 201, response
        extended = admin.form("/.actas/impersonate/extend", {"duration": "2h", "rd": rd})
        assert extended.status == 303 and extended.header("location") == expected, (rd, extended)
        exited = admin.form("/.actas/impersonate/exit", {"rd": rd})
        assert exited.status == 303 and exited.header("location") == expected, (rd, exited)
