"""SPEC §10.5: notifications. A real receiver process (webhook_receiver.py) records every
delivery: signed with the secret over timestamp + "." + body, retried with the same event id
after 500s or while the receiver is down, nothing lost across `kill -9` of the proxy, and
nothing the tests planted (passwords, cookies, request bodies) in any payload."""
import hashlib
import hmac
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ACTAS, HERE, admin_get, clean_env, free_port, request_bytes, run, session_header, wait_for
from postgres_fixtures import make_pair, pg_database, postgres_server  # noqa: F401
from test_impersonation import Admin, config, setup_site

SECRET = "whsec-planted-7f3a9c"
PLANTED = ["PLANTEDpass91", "PLANTEDcookie42", "PLANTEDbody77"]


class Receiver:
    def __init__(self, tmp, port=None, **options):
        self.port = port or free_port()
        self.record = tmp / f"webhook-{self.port}-{time.monotonic_ns()}.jsonl"
        self.record.touch()
        args = [sys.executable, str(HERE / "webhook_receiver.py"), "--port", str(self.port), "--record", str(self.record)]
        for name, value in options.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def requests(self):
        text = self.record.read_text()
        return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]

    def events(self, kind=None):
        found = []
        for r in self.requests():
            body = json.loads(r["body"])
            if kind is None or body.get("type") == kind:
                found.append((r, body))
        return found

    def wait(self, kind, count=1, timeout=20):
        wait_for(lambda: len(self.events(kind)) >= count, timeout=timeout, what=f"{count} {kind} deliveries")
        return self.events(kind)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=5)


@pytest.fixture
def receivers(tmp_path):
    started = []

    def factory(**options):
        receiver = Receiver(tmp_path, **options)
        started.append(receiver)
        return receiver
    yield factory
    for receiver in started:
        if receiver.process.poll() is None:
            receiver.stop()


def header(request, name):
    return [v for k, v in request["headers"] if k.lower() == name.lower()]


def notify_config(tmp_path, url, **extra):
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_text(f"  {SECRET}\n")  # surrounding whitespace is trimmed
    return config(**{"notify.webhook_url": url, "notify.webhook_secret_file": str(secret_file), **extra})


def assert_signed(request, body_text):
    timestamp = header(request, "X-ActAs-Timestamp")[0]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.{body_text}".encode(), hashlib.sha256).hexdigest()
    assert header(request, "X-ActAs-Signature") == [f"sha256={expected}"], request["headers"]
    assert abs(int(timestamp) - time.time()) < 120


def plant_secrets(admin):
    """Requests made while impersonating that carry secrets the payloads must never show."""
    admin.proxy.request(request_bytes("POST", "/form?password=" + PLANTED[0], [
        session_header(admin.cookie), ("Cookie", "app=" + PLANTED[1]), ("Content-Type", "application/json"),
        ("X-CSRF-Token", admin.csrf), ("Origin", "https://localhost")], json.dumps({"note": PLANTED[2]}).encode()))


def test_started_and_ended_are_delivered_signed_in_order_without_secrets(tmp_path, make_proxy, receivers):
    receiver = receivers()
    site = make_proxy(notify_config(tmp_path, receiver.url))
    setup_site(site)
    admin = Admin(site, "admin")
    response, started = admin.start("emp")
    assert response.status == 201, response
    plant_secrets(admin)
    response, _ = admin.api("DELETE", "/.actas/api/v1/impersonation")
    assert response.status in (200, 204), response

    (request, body), = receiver.wait("impersonation_started")
    assert_signed(request, request["body"])
    assert header(request, "Content-Type")[0].startswith("application/json")
    assert header(request, "X-ActAs-Event-Id") == [body["id"]] and body["id"].startswith("evt_")
    assert body["session_id"] == started["id"]
    assert body["actor"]["username"] == "admin" and body["actor"]["name"] == "Ada Admin" and body["actor"]["id"]
    assert body["target"]["username"] == "emp" and body["target"]["name"] == "Emma Employee"
    assert body["reason"] == "Ticket 4711: the report page is blank"
    assert body["mode"] == started["mode"] and body["expires_at"] == started["expires_at"]
    assert body["url"] == f"https://127.0.0.1:{site.https_port}/.actas/sessions/{started['id']}"
    assert body["ts"].endswith("Z") and "." in body["ts"]
    assert "end_reason" not in body

    (ended_request, ended), = receiver.wait("impersonation_ended")
    assert_signed(ended_request, ended_request["body"])
    assert ended["end_reason"] == "exit" and ended["session_id"] == started["id"] and "expires_at" not in ended
    order = [b["type"] for _, b in receiver.events() if b.get("session_id") == started["id"]]
    assert order == ["impersonation_started", "impersonation_ended"]
    everything = receiver.record.read_text()
    for planted in PLANTED + [SECRET, admin.cookie, admin.csrf]:
        assert planted not in everything


def test_a_failing_receiver_gets_retries_with_the_same_id_and_fresh_signatures(tmp_path, make_proxy, receivers):
    receiver = receivers(fail_first=2)
    site = make_proxy(notify_config(tmp_path, receiver.url, **{"notify.events": ["impersonation_started"]}))
    setup_site(site)
    assert Admin(site, "admin").start("emp")[0].status == 201
    attempts = receiver.wait("impersonation_started", count=3)
    ids = {header(r, "X-ActAs-Event-Id")[0] for r, _ in attempts}
    assert len(ids) == 1 and len(attempts) == 3
    for request, _ in attempts:
        assert_signed(request, request["body"])
    # Backoff: the gaps grow (1 s, then 2 s).
    times = [r["at"] for r, _ in attempts]
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 1.9, times
    metrics = admin_get(site.admin_port, "/metrics")[1]
    assert "actas_notify_failed_total 2" in metrics, metrics
    wait_for(lambda: "actas_notify_pending 0" in admin_get(site.admin_port, "/metrics")[1], what="pending 0")
    # Only the selected event type was sent (consents were granted in setup_site).
    assert {b["type"] for _, b in receiver.events()} == {"impersonation_started"}


def test_receiver_down_then_kill_9_and_restart_delivers_the_pending_event(tmp_path, make_proxy, receivers):
    port = free_port()  # nothing listens yet: connection refused
    site = make_proxy(notify_config(tmp_path, f"http://127.0.0.1:{port}/hook", **{"notify.events": ["impersonation_started"]}))
    setup_site(site)
    response, started = Admin(site, "admin").start("emp")
    assert response.status == 201
    # The event is pending before its first attempt; the refused connection then counts as a failed attempt.
    wait_for(lambda: "actas_notify_pending 1" in (m := admin_get(site.admin_port, "/metrics")[1])
             and "actas_notify_failed_total 0" not in m, what="one pending event and a failed attempt")
    site.process.send_signal(signal.SIGKILL)
    site.process.wait()
    receiver = receivers(port=port)
    site.start()
    (request, body), = receiver.wait("impersonation_started")
    assert body["session_id"] == started["id"]
    assert_signed(request, request["body"])


def test_a_redirecting_receiver_is_a_failed_attempt_and_the_other_url_never_hit(tmp_path, make_proxy, receivers):
    elsewhere = receivers()
    redirecting = receivers(redirect_to=elsewhere.url)
    site = make_proxy(notify_config(tmp_path, redirecting.url, **{"notify.events": ["impersonation_started"]}))
    setup_site(site)
    assert Admin(site, "admin").start("emp")[0].status == 201
    attempts = redirecting.wait("impersonation_started", count=2)
    assert len({header(r, "X-ActAs-Event-Id")[0] for r, _ in attempts}) == 1  # the same event, retried
    wait_for(lambda: "actas_notify_failed_total 0" not in admin_get(site.admin_port, "/metrics")[1], what="a failed attempt counted")
    assert "actas_notify_pending 1" in admin_get(site.admin_port, "/metrics")[1]
    result = run(["notify", "test", "--config", str(site.config_path)], check=False)
    assert result.returncode == 1 and result.stdout.strip() == "307"
    assert elsewhere.requests() == []


def test_denied_and_consent_events_follow_notify_events(tmp_path, make_proxy, receivers):
    receiver = receivers()
    site = make_proxy(notify_config(tmp_path, receiver.url, **{
        "notify.events": ["impersonation_denied", "consent_revoked", "consent_granted"]}))
    setup_site(site)
    admin = Admin(site, "admin")
    response, body = admin.start("nocon")
    assert response.status == 403 and body["error"] == "consent_required"
    (_, denied), = receiver.wait("impersonation_denied")
    assert denied["actor"]["username"] == "admin" and denied["target"]["username"] == "nocon"
    assert denied["reason"] == "Ticket 4711: the report page is blank" and "session_id" not in denied and "url" not in denied
    emp = Admin(site, "emp")
    response, _ = emp.api("DELETE", "/.actas/api/v1/consent")
    assert response.status in (200, 204)
    (_, revoked), = receiver.wait("consent_revoked")
    assert revoked["target"]["username"] == "emp" and "actor" not in revoked
    granted = receiver.wait("consent_granted", count=len(["emp", "sus", "newbie", "peer", "far", "evil", "admin2"]))
    assert {b["target"]["username"] for _, b in granted} >= {"emp", "admin2"}
    assert not receiver.events("impersonation_started")


def test_slack_format_sends_a_text_line(tmp_path, make_proxy, receivers):
    receiver = receivers()
    site = make_proxy(notify_config(tmp_path, receiver.url, **{"notify.webhook_format": "slack", "notify.events": ["impersonation_started"]}))
    setup_site(site)
    _, started = Admin(site, "admin").start("emp")
    wait_for(lambda: receiver.requests(), what="a delivery")
    request = receiver.requests()[0]
    body = json.loads(request["body"])
    assert list(body) == ["text"]
    assert body["text"].startswith("Ada Admin (admin) is acting as Emma Employee (emp)")
    assert f"/.actas/sessions/{started['id']}|See what they do>" in body["text"]
    assert_signed(request, request["body"])


def test_notify_test_command_prints_the_status_and_exits_by_it(tmp_path, make_proxy, receivers):
    good = receivers()
    site = make_proxy(notify_config(tmp_path, good.url), start=False)
    result = run(["notify", "test", "--config", str(site.config_path)])
    assert result.stdout.strip() == "200"
    (request, body), = good.events("test")
    assert_signed(request, request["body"])
    assert body["id"].startswith("evt_") and header(request, "X-ActAs-Event-Id") == [body["id"]]
    bad = receivers(status=500)
    site.write_config(notify_config(tmp_path, bad.url))
    result = run(["notify", "test", "--config", str(site.config_path)], check=False)
    assert result.returncode == 1 and result.stdout.strip() == "500"
    site.write_config(notify_config(tmp_path, f"http://127.0.0.1:{free_port()}/"))
    result = run(["notify", "test", "--config", str(site.config_path)], check=False)
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr


def test_notify_config_errors_name_file_line_and_key(tmp_path, make_proxy):
    site = make_proxy(config(), start=False)
    text = site.config_path.read_text()
    site.config_path.write_text(text + '\n[notify]\nwebhook_url = "http://127.0.0.1:9/"\nwebhook_secret = "literal"\n'
                                'webhook_secret_file = "missing.secret"\nwebhook_format = "teams"\nevents = ["impersonation_started", "nope"]\n'
                                'retry_for = "soon"\n')
    lines = site.config_path.read_text().splitlines()
    result = run(["check", "--config", str(site.config_path)], check=False)
    assert result.returncode == 2
    for key in ["notify.webhook_secret", "notify.webhook_secret_file", "notify.webhook_format", "notify.events", "notify.retry_for"]:
        line = next(i for i, l in enumerate(lines, 1) if l.startswith(key.split(".")[1] + " "))
        assert f"{site.config_path}:{line}: {key}:" in result.stderr, (key, result.stderr)


def test_two_instances_on_postgresql_deliver_each_event_once_in_order(pg_database, make_proxy, receivers, tmp_path):
    receiver = receivers()
    first, second = make_pair(make_proxy, pg_database, **notify_config(tmp_path, receiver.url))
    sessions = []
    for proxy, actor in [(first, "admin"), (second, "admin2"), (second, "admin"), (first, "admin2")]:
        admin = Admin(proxy, actor)
        response, started = admin.start("emp")
        assert response.status == 201, response
        sessions.append(started["id"])
        response, _ = admin.api("DELETE", "/.actas/api/v1/impersonation")
        assert response.status in (200, 204), response
    ended = receiver.wait("impersonation_ended", count=len(sessions))
    for proxy in (first, second):
        wait_for(lambda: "actas_notify_pending 0" in admin_get(proxy.admin_port, "/metrics")[1], what="outbox drained")
    ids = [header(r, "X-ActAs-Event-Id")[0] for r in receiver.requests()]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    for session in sessions:
        order = [b["type"] for _, b in receiver.events() if b.get("session_id") == session]
        assert order == ["impersonation_started", "impersonation_ended"], (session, order)
    assert {b["session_id"] for _, b in ended} == set(sessions)
