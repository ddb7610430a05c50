"""SPEC §7, issue 14 items 3 and 4: a "session ended" notice belongs to the session it is about
and is shown once (exit, sign-out and a new session drop older ones), and the end that is shown,
sent to the app and enforced is one and the same instant."""
import calendar
import json
import time
import urllib.parse

import pytest

from conftest import Upstream, header_values, request_bytes, session_header
from test_impersonation import Admin, Upstream_records, config, fresh, setup_site, started  # noqa: F401 (fresh is a fixture)

pytestmark = pytest.mark.protocols("http/1.1", "h2")


def revoke_consent(proxy, username):
    response, _ = Admin(proxy, username).api("DELETE", "/.actas/api/v1/consent")
    assert response.status == 200, response


def grant_consent(proxy, username):
    response, _ = Admin(proxy, username).api("POST", "/.actas/api/v1/consent", {"hours": 24})
    assert response.status == 200, response


def forwarded_as(proxy, path):
    records = [r for r in Upstream_records(proxy) if r["target"] == path]
    assert len(records) == 1, records
    return header_values(records[0], "X-Forwarded-User")


def ended_by_revocation(proxy, admin):
    """Admin acts as Emma; Emma revokes her consent: the session ends with a notice pending."""
    session = started(admin, "emp")
    revoke_consent(proxy, "emp")
    return session


# ---- item 3: stale notices --------------------------------------------------------------------

def test_new_session_and_exit_drop_the_notice_of_an_earlier_one(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    ended_by_revocation(proxy, admin)
    # Without visiting the app in between, the administrator acts as Fran and exits.
    started(admin, "far")
    assert admin.api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200
    response = admin.fetch("/after-exit")
    assert response.status == 200, response
    assert forwarded_as(proxy, "/after-exit") == ["admin"]
    navigation = admin.browse("/after-exit-page")
    assert navigation.status == 200, navigation


def test_exit_form_drops_the_notice_of_an_earlier_session(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    ended_by_revocation(proxy, admin)
    started(admin, "far")
    assert admin.form("/.actas/impersonate/exit", {"rd": "/"}).status == 303
    response = admin.browse("/after-exit-form")
    assert response.status == 200, response
    assert forwarded_as(proxy, "/after-exit-form") == ["admin"]


def test_sign_out_drops_the_notice(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    ended_by_revocation(proxy, admin)
    out = admin.form("/.actas/logout", {})
    assert out.status == 303, out
    again = Admin(proxy, "admin")
    response = again.fetch("/after-sign-out")
    assert response.status == 200, response
    assert forwarded_as(proxy, "/after-sign-out") == ["admin"]


def test_dropped_notice_stays_dropped_after_a_restart(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    ended_by_revocation(proxy, admin)
    started(admin, "far")
    assert admin.api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200
    proxy.stop()
    proxy.start()
    again = Admin(proxy, "admin")
    response = again.fetch("/after-restart")
    assert response.status == 200, response


def test_notice_is_about_its_own_session_and_shown_once(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    first = ended_by_revocation(proxy, admin)
    second = started(admin, "far")
    revoke_consent(proxy, "far")
    response = admin.fetch("/after-second-end")
    assert response.status == 403, response
    body = json.loads(response.body)
    assert body["error"] == "impersonation_ended" and body["end_reason"] == "consent_revoked"
    navigation = admin.browse("/next-page")
    assert navigation.status == 200, navigation  # shown once: not again for the page after
    assert forwarded_as(proxy, "/next-page") == ["admin"]
    assert all(r["target"] != "/after-second-end" for r in Upstream_records(proxy))
    assert first != second


def test_notice_navigation_names_the_latest_session(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    ended_by_revocation(proxy, admin)
    grant_consent(proxy, "emp")
    second = started(admin, "emp")
    revoke_consent(proxy, "emp")
    navigation = admin.browse("/after")
    assert navigation.status == 303 and navigation.header("location") == f"/.actas/ended?id={second}", navigation
    assert admin.browse("/after-again").status == 200


# ---- item 4: one end instant ------------------------------------------------------------------

def epoch(rfc3339):
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


def test_end_shown_sent_and_enforced_is_one_instant(make_proxy, upstream):
    proxy = make_proxy(config(**{"impersonation.max_duration": "24h"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    response, started_body = admin.start("emp", duration="2s")
    assert response.status == 201, response
    advertised = started_body["expires_at"]
    end = epoch(advertised)
    assert advertised == admin.api("GET", "/.actas/api/v1/me")[1]["impersonation"]["expires_at"]
    listed = admin.api("GET", "/.actas/api/v1/sessions")[1]["sessions"]
    assert [s["expires_at"] for s in listed if s["id"] == started_body["id"]] == [advertised]

    # Hammer until refused; note when each request was sent (before its first byte).
    sent = {}
    for n in range(2000):
        path = f"/tick/{n}"
        sent[path] = time.time()
        answer = admin.fetch(path)
        if answer.status != 200:
            assert answer.status == 403 and json.loads(answer.body)["end_reason"] == "expired", answer
            break
    else:
        raise AssertionError("never refused")
    as_target = [r for r in Upstream_records(proxy) if r["target"].startswith("/tick/") and header_values(r, "X-Impersonation-Id")]
    assert as_target, "nothing was forwarded as the target before the end"
    assert {tuple(header_values(r, "X-Impersonation-Expires")) for r in as_target} == {(advertised,)}
    # A request sent at or after the advertised end was decided after it: it must not have
    # reached the app as the target.
    late = [r["target"] for r in as_target if sent[r["target"]] >= end]
    assert late == [], f"forwarded as the target after {advertised}: {late}"
    # And the session's recorded end is the advertised one.
    ended = admin.api("GET", "/.actas/api/v1/sessions")[1]["sessions"]
    assert [s["expires_at"] for s in ended if s["id"] == started_body["id"]] == [advertised]


def test_extended_end_is_whole_seconds_and_enforced_as_shown(make_proxy, upstream):
    proxy = make_proxy(config(**{"impersonation.max_duration": "24h"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    # Long enough that a loaded machine reaches the PATCH before the first end.
    response, body = admin.start("emp", duration="4s")
    assert response.status == 201, response
    response, extended = admin.api("PATCH", "/.actas/api/v1/impersonation", {"duration": "6s"})
    assert response.status == 200, response
    advertised = extended["expires_at"]
    end = epoch(advertised)
    assert epoch(advertised) >= epoch(body["expires_at"])
    sent = {}
    for n in range(2000):
        path = f"/x/{n}"
        sent[path] = time.time()
        if admin.fetch(path).status != 200:
            break
    as_target = [r for r in Upstream_records(proxy) if r["target"].startswith("/x/") and header_values(r, "X-Impersonation-Id")]
    assert {tuple(header_values(r, "X-Impersonation-Expires")) for r in as_target} == {(advertised,)}
    assert [r["target"] for r in as_target if sent[r["target"]] >= end] == []
