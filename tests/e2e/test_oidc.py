"""OIDC sign-in end to end (SPEC §10.3, §4, §8): a real provider process (oidc_provider.py)
over HTTPS with its own CA, the real `actas` binary, and a client that walks the code flow as a
browser does. The attacks: replayed and foreign state, missing cookie, hostile ID tokens
(wrong iss/aud/azp, expired, nonce, alg none, HS256 keyed with the public key, unknown kid),
JWKS rotation, foreign rd, suspended users, account conflicts, a provider that is down, and
back-channel logout with good and bad tokens."""
import json
import urllib.parse
import uuid

import pytest

from conftest import import_users, run, set_cookies, wait_for
from oidc_fixtures import CLIENT_ID, Browser, log_events, now, oidc_proxy, provider  # noqa: F401 (fixtures)


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def refused(reply, code, status=401):
    assert reply.status == status, reply
    assert reply.json()["error"] == code, reply


def failures(proxy):
    return [r.get("reason") for r in log_events(proxy, "login_failed")]


def logged(proxy, kind, predicate):
    """The log's records of `kind` once `predicate` holds for them (events are written off the
    request path, so a record may land just after the answer)."""
    wait_for(lambda: predicate(log_events(proxy, kind)), timeout=10, what=f"{kind} records")
    return log_events(proxy, kind)


def failures_are(proxy, expected):
    logged(proxy, "login_failed", lambda records: [r.get("reason") for r in records] == expected)


# ---- the flow -------------------------------------------------------------------------------

def test_sign_in_creates_the_user_and_the_same_session_as_password(oidc_proxy, provider, upstream):
    proxy = oidc_proxy()
    browser = Browser(proxy, provider)
    start = browser.start("/app/home?x=1")
    # The authorization request: code flow with PKCE S256, state and nonce.
    asked = query_of(start.header("Location"))
    assert start.header("Location").startswith(provider.issuer + "/authorize?")
    assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == f"https://localhost:{proxy.https_port}/.actas/oidc/callback"
    assert asked["scope"].split() == ["openid", "email", "profile"]
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["state"] and asked["nonce"] and asked["state"] != asked["nonce"]
    cookie = next(v for v in start.all("Set-Cookie") if v.startswith("__Host-actas_oidc="))
    attributes = [a.strip() for a in cookie.split(";")[1:]]
    assert {"Path=/", "Secure", "HttpOnly", "SameSite=Lax"} <= set(attributes), cookie
    max_age = int(next(a for a in attributes if a.startswith("Max-Age=")).split("=")[1])
    assert 0 < max_age <= 600
    assert not any(a.lower().startswith("domain") for a in attributes)

    done = browser.request("GET", browser.authorize(start))
    assert done.status == 303, done
    assert done.header("Location") == "/app/home?x=1"
    cookies = set_cookies(done)
    assert "HttpOnly" in cookies["__Host-actas_session"][1] and "SameSite=Lax" in cookies["__Host-actas_session"][1]
    assert "Max-Age=0" in cookies["__Host-actas_oidc"][1]
    # No IdP token in any cookie.
    assert all(v.count(".") < 2 for v, _ in cookies.values())

    me = browser.me().json()["user"]
    assert (me["username"], me["email"], me["name"], me["role"], me["groups"]) == \
        ("alice", "alice@example.com", "Alice Liddell", "employee", ["staff"])
    assert browser.request("GET", browser.proxy_url("/app/home")).status == 200
    record = upstream.requests()[-1]
    headers = {k.lower(): v for k, v in record["headers"]}
    assert headers["x-forwarded-user"] == "alice"
    assert not any(provider.issuer in v for v in headers.values())
    login = logged(proxy, "login", bool)[-1]
    assert login["method"] == "oidc" and login["user"] == "alice"
    shown = json.loads(run(["users", "show", "alice", "--json", "--config", str(proxy.config_path)]).stdout)
    assert shown["status"] == "active" and shown["last_login"]


def test_later_sign_ins_update_the_user_from_the_claims(oidc_proxy, provider):
    proxy = oidc_proxy(role_map={"actas-admins": "super_admin", "hr": "hr_admin"}, org_unit_claim="ou")
    assert Browser(proxy, provider).sign_in().status == 303
    provider.set_user(sub="sub-alice", preferred_username="alice2", email="alice2@example.com", email_verified=True,
                      name="Alice L.", groups=["hr", "staff", "actas-admins"], ou="acme/emea")
    browser = Browser(proxy, provider)
    assert browser.sign_in().status == 303
    me = browser.me().json()["user"]
    # Same user (found by issuer + sub), renamed; highest-ranked mapped role wins.
    assert (me["username"], me["email"], me["role"], me["org_unit"]) == ("alice2", "alice2@example.com", "super_admin", "acme/emea")
    users = json.loads(run(["users", "list", "--json", "--config", str(proxy.config_path)]).stdout)
    assert [u["username"] for u in users] == ["alice2"]


def test_groups_are_filtered_then_capped(oidc_proxy, provider, upstream):
    proxy = oidc_proxy(groups_allow=["team-*", "staff"], max_groups=50)
    provider.set_user(sub="sub-g", preferred_username="grace", email="grace@example.com", email_verified=True,
                      groups=[f"entra-{i}" for i in range(150)] + [f"team-{i}" for i in range(150)] + ["staff"])
    browser = Browser(proxy, provider)
    assert browser.sign_in().status == 303
    assert browser.me().json()["user"]["groups"] == [f"team-{i}" for i in range(50)]
    assert browser.request("GET", browser.proxy_url("/app")).status == 200
    headers = {k.lower(): v for k, v in upstream.requests()[-1]["headers"]}
    assert headers["x-forwarded-groups"] == ",".join(f"team-{i}" for i in range(50))


def test_no_role_refuses_when_default_role_is_empty(oidc_proxy, provider):
    proxy = oidc_proxy(role_map={"actas-admins": "super_admin"}, default_role="")
    refused(Browser(proxy, provider).sign_in(), "no_role", 403)
    failures_are(proxy, ["no_role"])


def test_rd_to_another_origin_falls_back_to_root(oidc_proxy, provider):
    proxy = oidc_proxy()
    for rd in ("https://evil.example/steal", "//evil.example/x", "/\\evil.example"):
        assert Browser(proxy, provider).sign_in(rd=rd).header("Location") == "/", rd


# ---- state, cookie, replay ------------------------------------------------------------------

def test_replayed_callback_is_refused(oidc_proxy, provider):
    proxy = oidc_proxy()
    browser = Browser(proxy, provider)
    start = browser.start()
    flow_cookie = browser.cookies[proxy.https_port]["__Host-actas_oidc"]
    callback = browser.authorize(start)
    assert browser.request("GET", callback).status == 303
    # The same cookie, state and code again (an attacker who captured them all).
    attacker = Browser(proxy, provider)
    attacker.cookies[proxy.https_port] = {"__Host-actas_oidc": flow_cookie}
    refused(attacker.request("GET", callback), "oidc_state")
    logged(proxy, "login_failed", lambda records: any(r.get("reason") == "oidc_state" for r in records))


def test_state_from_another_browser_is_refused(oidc_proxy, provider):
    proxy = oidc_proxy()
    victim, attacker = Browser(proxy, provider), Browser(proxy, provider)
    attacker_callback = attacker.authorize(attacker.start())
    victim.start()  # the victim has a sign-in of their own in progress
    refused(victim.request("GET", attacker_callback), "oidc_state")
    # Without any cookie, and with a wrong state.
    refused(Browser(proxy, provider).request("GET", attacker_callback), "oidc_state")
    callback = victim.authorize(victim.start())
    parts = query_of(callback)
    wrong = victim.proxy_url("/.actas/oidc/callback?" + urllib.parse.urlencode({"code": parts["code"], "state": "x" + parts["state"]}))
    refused(victim.request("GET", wrong), "oidc_state")


def test_forged_flow_cookie_is_refused(oidc_proxy, provider):
    proxy = oidc_proxy()
    browser = Browser(proxy, provider)
    callback = browser.authorize(browser.start("/ok"))
    value = browser.cookies[proxy.https_port]["__Host-actas_oidc"]
    parts = value.split(".")
    parts[3] = "Ly9ldmlsLmV4YW1wbGU"  # rd → //evil.example, MAC unchanged
    browser.cookies[proxy.https_port]["__Host-actas_oidc"] = ".".join(parts)
    refused(browser.request("GET", callback), "oidc_state")


def test_browser_gets_the_login_page_with_the_status(oidc_proxy, provider):
    proxy = oidc_proxy()
    browser = Browser(proxy, provider, html=True)
    reply = browser.request("GET", browser.proxy_url("/.actas/oidc/callback?code=x&state=y"))
    assert reply.status == 401, reply
    assert b"Sign in with" in reply.body and b"expired or was already used" in reply.body


# ---- hostile ID tokens ----------------------------------------------------------------------

HOSTILE = {
    "wrong_iss": {"claims": {"iss": "https://evil.example"}},
    "wrong_aud": {"claims": {"aud": "someone-else"}},
    "wrong_azp": {"claims": {"aud": [CLIENT_ID, "other"], "azp": "other"}},
    "expired": {"claims": {"exp": now() - 3600, "iat": now() - 4000}},
    "issued_in_future": {"claims": {"iat": now() + 3600, "exp": now() + 7200}},
    "not_yet_valid": {"claims": {"nbf": now() + 3600}},
    "nonce_mismatch": {"claims": {"nonce": "not-the-nonce"}},
    "no_nonce": {"remove": ["nonce"]},
    "alg_none": {"sign": "none"},
    "hs256_with_public_key": {"sign": "hs256_public_key"},
    "unknown_kid": {"sign": "unknown_kid"},
}


@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_hostile_id_token_is_refused(oidc_proxy, provider, attack):
    proxy = oidc_proxy()
    provider.next_token(**HOSTILE[attack])
    browser = Browser(proxy, provider)
    refused(browser.sign_in(), "oidc_id_token")
    assert browser.me().status == 401
    failures_are(proxy, ["oidc_id_token"])
    # The token never reaches the log.
    assert ".ey" not in (proxy.dir / "logs" / "audit.jsonl").read_text().replace("[REDACTED]", "")


def test_other_algorithms_and_key_rotation(oidc_proxy, provider):
    proxy = oidc_proxy()
    # ES256, PS256, and several audiences with azp = client_id or without azp (SPEC: azp "when present").
    for spec in ({"kid": "ec-1"}, {"sign": "ps256"}, {"claims": {"aud": ["other", CLIENT_ID], "azp": CLIENT_ID}},
                 {"claims": {"aud": ["other", CLIENT_ID]}}):
        provider.next_token(**spec)
        assert Browser(proxy, provider).sign_in().status == 303, spec
    assert provider.stats()["jwks"] == 1  # the first fetch, cached since
    # The provider rotates to a new key: one refetch, and the sign-in works.
    provider.next_token(rotate=True)
    assert Browser(proxy, provider).sign_in().status == 303
    assert provider.stats()["jwks"] == 2
    # An unknown kid within the minute does not make the proxy fetch again.
    provider.next_token(sign="unknown_kid")
    refused(Browser(proxy, provider).sign_in(), "oidc_id_token")
    assert provider.stats()["jwks"] == 2


def test_unknown_kid_refetches_once_not_per_request(oidc_proxy, provider):
    proxy = oidc_proxy()
    assert Browser(proxy, provider).sign_in().status == 303
    for _ in range(3):
        provider.next_token(sign="unknown_kid")
        refused(Browser(proxy, provider).sign_in(), "oidc_id_token")
    assert provider.stats()["jwks"] == 2  # first fetch + one refetch


# ---- users ----------------------------------------------------------------------------------

def test_suspended_or_deleted_user_cannot_sign_in(oidc_proxy, provider):
    proxy = oidc_proxy()
    assert Browser(proxy, provider).sign_in().status == 303
    for command in ("suspend", "delete"):
        run(["users", command, "alice", "--config", str(proxy.config_path)])
        refused(Browser(proxy, provider).sign_in(), "user_suspended", 403)
    failures_are(proxy, ["user_suspended", "user_suspended"])


def test_username_of_another_user_is_an_account_conflict(oidc_proxy, provider):
    proxy = oidc_proxy()
    import_users(proxy, [{"username": "alice", "email": "alice@corp.example", "role": "employee"}])
    refused(Browser(proxy, provider).sign_in(), "account_conflict", 403)
    # An unverified email does not link either.
    provider.set_user(sub="sub-bob", preferred_username="bob", email="alice@corp.example", email_verified=False)
    refused(Browser(proxy, provider).sign_in(), "account_conflict", 403)
    failures_are(proxy, ["account_conflict", "account_conflict"])


def test_verified_email_links_an_existing_user(oidc_proxy, provider):
    proxy = oidc_proxy()
    import_users(proxy, [{"username": "a.liddell", "email": "Alice@Example.com", "role": "manager"}])
    browser = Browser(proxy, provider)
    assert browser.sign_in().status == 303
    me = browser.me().json()["user"]
    assert me["username"] == "alice" and me["role"] == "employee"
    users = json.loads(run(["users", "list", "--json", "--config", str(proxy.config_path)]).stdout)
    assert len(users) == 1


# ---- the provider is down -------------------------------------------------------------------

def test_provider_down_is_a_quick_502(oidc_proxy, provider):
    proxy = oidc_proxy()
    provider.stop()
    browser = Browser(proxy, provider)
    refused(browser.request("GET", browser.proxy_url("/.actas/oidc/start?rd=/")), "oidc_provider_unavailable", 502)
    failures_are(proxy, ["oidc_provider_unavailable"])


def test_jwks_unreachable_is_a_502_not_a_bad_token(oidc_proxy, provider):
    proxy = oidc_proxy()
    assert provider.call("POST", "/_control/jwks_down", {"down": True})[0] == 200
    refused(Browser(proxy, provider).sign_in(), "oidc_provider_unavailable", 502)
    assert provider.call("POST", "/_control/jwks_down", {"down": False})[0] == 200
    # A failed fetch pauses fetching for a few seconds; then sign-in works again by itself.
    wait_for(lambda: Browser(proxy, provider).sign_in().status == 303, what="sign-in after the JWKS is back")


# ---- sign-out -------------------------------------------------------------------------------

def test_logout_sends_the_browser_to_the_providers_end_session(oidc_proxy, provider):
    proxy = oidc_proxy()
    browser = Browser(proxy, provider)
    assert browser.sign_in().status == 303
    csrf = browser.me().json()["csrf_token"]
    out = browser.request("POST", browser.proxy_url("/.actas/logout"), body=f"csrf_token={csrf}",
                          headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": f"https://localhost:{proxy.https_port}"})
    assert out.status == 303, out
    assert out.header("Location").startswith(provider.issuer + "/end_session?")
    asked = query_of(out.header("Location"))
    assert asked["post_logout_redirect_uri"] == f"https://localhost:{proxy.https_port}/.actas/login"
    assert asked["id_token_hint"].count(".") == 2
    assert browser.me().status == 401


def backchannel(proxy, browser, token):
    body = urllib.parse.urlencode({"logout_token": token})
    return browser.request("POST", browser.proxy_url("/.actas/oidc/backchannel-logout"), body=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})


def logout_claims(provider, **extra):
    claims = {"iss": provider.issuer, "aud": CLIENT_ID, "iat": now(), "exp": now() + 120, "jti": "j-" + uuid.uuid4().hex,
              "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def test_backchannel_logout_ends_the_sign_in(oidc_proxy, provider):
    proxy = oidc_proxy()
    browser, other = Browser(proxy, provider), Browser(proxy, provider)
    assert browser.sign_in().status == 303 and other.sign_in().status == 303
    # End one provider session by sub: both sign-ins of the user end.
    reply = backchannel(proxy, Browser(proxy, provider), provider.mint(logout_claims(provider, sub="sub-alice")))
    assert reply.status == 200, reply
    assert browser.me().status == 401 and other.me().status == 401
    logouts = logged(proxy, "logout", lambda records: len(records) >= 2)
    assert len(logouts) == 2 and all(r.get("backchannel") is True for r in logouts)


BAD_LOGOUT = {
    "nonce": lambda p: p.mint(logout_claims(p, sub="sub-alice", nonce="n")),
    "no_event": lambda p: p.mint(logout_claims(p, sub="sub-alice", events={})),
    "no_sid_or_sub": lambda p: p.mint(logout_claims(p)),
    "wrong_aud": lambda p: p.mint(logout_claims(p, sub="sub-alice", aud="other")),
    "wrong_iss": lambda p: p.mint(logout_claims(p, sub="sub-alice", iss="https://evil.example")),
    "alg_none": lambda p: p.mint(logout_claims(p, sub="sub-alice"), sign="none"),
    "hs256": lambda p: p.mint(logout_claims(p, sub="sub-alice"), sign="hs256_public_key"),
    "garbage": lambda p: "not-a-jwt",
    "no_exp": lambda p: p.mint(logout_claims(p, sub="sub-alice", exp=None)),
    "no_jti": lambda p: p.mint(logout_claims(p, sub="sub-alice", jti=None)),
    "old_iat": lambda p: p.mint(logout_claims(p, sub="sub-alice", iat=now() - 7200, exp=now() + 120)),
}


@pytest.mark.parametrize("kind", sorted(BAD_LOGOUT))
def test_backchannel_logout_with_a_bad_token_is_400(oidc_proxy, provider, kind):
    proxy = oidc_proxy()
    browser = Browser(proxy, provider)
    assert browser.sign_in().status == 303
    reply = backchannel(proxy, Browser(proxy, provider), BAD_LOGOUT[kind](provider))
    refused(reply, "invalid_logout_token", 400)
    assert reply.json()["message"] == "The logout token is not valid."  # the detail is for the log only
    assert browser.me().status == 200


def test_a_replayed_logout_token_is_400_and_ends_nothing(oidc_proxy, provider):
    proxy = oidc_proxy()
    first = Browser(proxy, provider)
    assert first.sign_in().status == 303
    token = provider.mint(logout_claims(provider, sub="sub-alice"))
    assert backchannel(proxy, Browser(proxy, provider), token).status == 200
    assert first.me().status == 401
    second = Browser(proxy, provider)
    assert second.sign_in().status == 303
    refused(backchannel(proxy, Browser(proxy, provider), token), "invalid_logout_token", 400)
    assert second.me().status == 200


def test_backchannel_logout_ends_the_impersonation_of_that_sign_in(oidc_proxy, provider):
    proxy = oidc_proxy(role_map={"actas-admins": "super_admin"}, **{
        "impersonation.consent": "off", "impersonation.require_first_login": False})
    import_users(proxy, [{"username": "emp", "email": "emp@example.com", "role": "employee"}])
    provider.set_user(sub="sub-admin", preferred_username="boss", email="boss@example.com", email_verified=True,
                      groups=["actas-admins"])
    admin = Browser(proxy, provider)
    assert admin.sign_in().status == 303
    me = admin.me().json()
    started = admin.request("POST", admin.proxy_url("/.actas/api/v1/impersonation"),
                            body=json.dumps({"target": "emp", "reason": "Ticket 42: checking the report"}),
                            headers={"Content-Type": "application/json", "X-CSRF-Token": me["csrf_token"],
                                     "Origin": f"https://localhost:{proxy.https_port}"})
    assert started.status == 201, started
    # The provider ends the admin's provider session (by sid, as the provider knows it).
    sid = admin_sid(proxy)
    assert backchannel(proxy, Browser(proxy, provider), provider.mint(logout_claims(provider, sid=sid))).status == 200
    ended = logged(proxy, "impersonation_ended", bool)
    assert ended and ended[-1]["end_reason"] == "actor_signed_out"
    assert admin.me().status == 401


def admin_sid(proxy):
    """The provider session id the proxy recorded (the test IdP makes one per code)."""
    import sqlite3
    with sqlite3.connect(proxy.dir / "data" / "actas.db") as db:
        return db.execute("SELECT provider_session FROM oidc_sign_ins").fetchone()[0]


# ---- the login page and the configuration ---------------------------------------------------

def test_login_page_offers_the_configured_methods(oidc_proxy, provider):
    both = oidc_proxy()
    page = Browser(both, provider, html=True).request("GET", f"https://localhost:{both.https_port}/.actas/login?rd=/x")
    assert page.status == 200 and b"Sign in with localhost" in page.body and b'name="password"' in page.body
    assert b'href="/.actas/oidc/start?rd=/x"' in page.body
    only = oidc_proxy(methods=("oidc",))
    page = Browser(only, provider, html=True).request("GET", f"https://localhost:{only.https_port}/.actas/login")
    assert page.status == 200 and b"Sign in with" in page.body and b'name="password"' not in page.body


def test_check_names_missing_and_forbidden_oidc_keys(make_proxy):
    proxy = make_proxy(start=False)
    text = proxy.config_path.read_text().replace('[auth]\n', '[auth]\nmethods = ["oidc"]\n', 1)
    proxy.config_path.write_text(text + '\n[auth.oidc]\nclient_secret = "literal"\n')
    result = run(["check", "--config", str(proxy.config_path)], check=False)
    assert result.returncode == 2
    text = result.stdout + result.stderr
    for key in ("auth.oidc.issuer", "auth.oidc.client_id", "auth.oidc.client_secret_file", "auth.oidc.client_secret"):
        assert f": {key}: " in text, (key, text)
    line = next(l for l in text.splitlines() if ": auth.oidc.client_secret: " in l)
    assert line.startswith(f"{proxy.config_path}:{len(proxy.config_path.read_text().splitlines())}:"), line


def test_backchannel_logout_on_one_instance_ends_the_sign_in_and_impersonation_on_another(oidc_proxy, provider, upstream):
    """Two instances on one store: the provider's logout reaches the second; the administrator
    signed in (and impersonating) through the first is signed out there before it returns."""
    extra = {"impersonation.consent": "off", "impersonation.require_first_login": False}
    first = oidc_proxy(role_map={"actas-admins": "super_admin"}, **extra)
    second = oidc_proxy(role_map={"actas-admins": "super_admin"},
                        **{**extra, "store.url": f"sqlite:{first.dir / 'data' / 'actas.db'}"})
    import_users(first, [{"username": "emp", "email": "emp@example.com", "role": "employee"}])
    provider.set_user(sub="sub-admin", preferred_username="boss", email="boss@example.com", email_verified=True,
                      groups=["actas-admins"])
    admin = Browser(first, provider)
    assert admin.sign_in().status == 303
    csrf = admin.me().json()["csrf_token"]
    started = admin.request("POST", admin.proxy_url("/.actas/api/v1/impersonation"),
                            body=json.dumps({"target": "emp", "reason": "Ticket 42: checking the report"}),
                            headers={"Content-Type": "application/json", "X-CSRF-Token": csrf,
                                     "Origin": f"https://localhost:{first.https_port}"})
    assert started.status == 201, started
    token = provider.mint(logout_claims(provider, sub="sub-admin"))
    assert backchannel(second, Browser(second, provider), token).status == 200
    # Enforced on the first instance by the time the second answered.
    assert admin.request("GET", admin.proxy_url("/app")).status == 401
    assert admin.me().status == 401
    ended = logged(second, "impersonation_ended", bool)
    assert [r["end_reason"] for r in ended] == ["actor_signed_out"]
    assert not any(dict((k.lower(), v) for k, v in r["headers"]).get("x-forwarded-user") == "emp"
                   for r in upstream.requests())
