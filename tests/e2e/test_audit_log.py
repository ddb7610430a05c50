"""The request log end to end (SPEC §8): one record per request and event, redacted
everywhere, one line per record whatever is thrown at it, durable for impersonated requests
(also across kill -9), copied to the store for the people concerned."""
import gzip
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import (
    ORIGIN, complete_lines, Proxy, Upstream, header_values, import_users, login, me, read_response, request_bytes, run, session_header,
    wait_for,
)
from test_impersonation import Admin, REASON, config, setup_site

SENTINELS = [f"S3NT1NEL{i:02d}" for i in range(40)]
JWT_LOOKING = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTM05UMU5FTDM5In0.c2lnbmF0dXJlUzNOVDFORUwzOQ"


def log_lines(proxy):
    return complete_lines(proxy.dir / "logs" / "audit.jsonl")


def records(proxy):
    return [json.loads(line) for line in log_lines(proxy)]


def verify_chain(lines):
    """The SPEC's ten lines: hash = sha256(prev + "\\n" + line without its hash member)."""
    prev = "0" * 64
    for number, line in enumerate(lines, 1):
        body, marker, tail = line.rpartition(',"hash":"')
        assert marker and tail.endswith('"}'), line
        assert json.loads(line)["prev"] == prev and json.loads(line)["seq"] == number
        digest = hashlib.sha256((prev + "\n" + body + "}").encode()).hexdigest()
        assert digest == tail[:-2], f"line {number}"
        prev = digest


def multipart(fields, files):
    boundary = "----actasboundary7MA4YWxkTrZu0gW"
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    for name, filename, content in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f'Content-Type: text/plain\r\n\r\n{content}\r\n')
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def acting(make_proxy, upstream):
    proxy = make_proxy(config(**{"audit.body_capture_bytes": 65536}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    response, body = admin.start("emp")
    assert response.status == 201
    return proxy, upstream, admin, body["id"]


def test_secrets_never_reach_the_log_stdout_stderr_or_store(acting):
    proxy, upstream, admin, session = acting
    s = SENTINELS
    cookie = ("Cookie", f"__Host-actas_session={admin.cookie}; app={s[0]}")

    def send(method, path, headers=(), body=b""):
        response = proxy.request(request_bytes(method, path, [cookie, *headers], body))
        assert response.status < 500, (path, response)
        return response

    # Headers: every redact_headers entry, mixed case, and bearer/JWT values in others.
    send("GET", "/h", [("Authorization", f"Basic {s[1]}"), ("proxy-authorization", s[2]), ("X-API-Key", s[3]),
                       ("X-Note", f"Bearer {s[4]}"), ("X-Trace", JWT_LOOKING), ("X-Token-Hint", f"actas_{s[5]}abcdefghijklmnop")])
    # Query: names containing redact keys, case, percent-encoded names, repeated keys.
    send("GET", f"/q?password={s[6]}&PassWord={s[7]}&pass%77ord={s[8]}&api_key={s[9]}&user_token={s[10]}&token={s[11]}&token={s[12]}&ok=visible")
    # Form body.
    # (pass%77ord arrives as written, once encoded; pass%2577ord is the same name encoded twice.)
    send("POST", "/f", [("Content-Type", "application/x-www-form-urlencoded")],
         (urllib.parse.urlencode([("name", "Jane"), ("password", s[13]), ("newSecret", s[15]), ("note", f"Bearer {s[16]}")])
          + f"&pass%77ord={s[14]}&pass%2577ord={s[30]}").encode())
    # Multipart with a file.
    body, content_type = multipart([("name", "Jane"), ("password", s[17]), ("client_secret", s[18])], [("upload", "a.txt", s[19])])
    send("POST", "/m", [("Content-Type", content_type)], body)
    # Nested JSON, arrays, odd key cases, JWT-looking values in unrelated fields.
    document = {"user": {"name": "Jane", "password": s[20], "profile": {"credentials": [{"apiKey": s[21]}, {"PRIVATE_KEY": s[22]}],
                                                                     "notes": [f"token {JWT_LOOKING}", {"deep": {"ssn": s[23]}}]}},
                "Authorization": s[24], "comment": f"please use Bearer {s[25]}"}
    send("POST", "/j", [("Content-Type", "application/json")], json.dumps(document).encode())
    # gzip-encoded JSON body.
    send("POST", "/gz", [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
         gzip.compress(json.dumps({"password": s[26], "visible": "fine"}).encode()))
    # Malformed JSON and invalid UTF-8 are never logged raw.
    send("POST", "/bad", [("Content-Type", "application/json")], f'{{"password": "{s[27]}", '.encode())
    send("POST", "/utf", [("Content-Type", "application/x-www-form-urlencoded")], b"name=\xff\xfe&secret=" + s[28].encode())
    # Another content type entirely.
    send("POST", "/xml", [("Content-Type", "text/xml")], f"<password>{s[29]}</password>".encode())
    admin.api("DELETE", "/.actas/api/v1/impersonation")
    proxy.stop()

    log = (proxy.dir / "logs" / "audit.jsonl").read_text()
    stderr = proxy.stderr_path.read_text()
    db = sqlite3.connect(proxy.dir / "data" / "actas.db")
    stored = "\n".join(line for (line,) in db.execute("SELECT line FROM session_audit"))
    dump = "\n".join(db.iterdump())
    for sentinel in s[:31]:
        for name, text in (("log", log), ("stderr", stderr), ("store copy", stored), ("store", dump)):
            assert sentinel not in text, f"{sentinel} in {name}"
    assert JWT_LOOKING not in log
    assert "visible" in log and "Jane" in log  # redaction is not "log nothing"
    lines = log.splitlines()
    verify_chain(lines)
    by_path = {r.get("path"): r for r in map(json.loads, lines) if r["type"] == "request"}
    assert by_path["/q"]["query"]["ok"] == "visible"
    bad_json = f'{{"password": "{s[27]}", '.encode()
    assert by_path["/bad"]["request_body"]["unparsed"] is True and by_path["/bad"]["request_body"]["bytes"] == len(bad_json)
    assert by_path["/utf"]["request_body"]["unparsed"] is True
    xml = by_path["/xml"]["request_body"]
    assert xml["unparsed"] is True and xml["content_type"] == "text/xml" and xml["bytes"] == len(f"<password>{s[29]}</password>")
    assert by_path["/gz"]["request_body"]["visible"] == "fine"
    assert by_path["/j"]["request_body"]["user"]["name"] == "Jane"
    # Every impersonated record is in the store copy, identical to the log line.
    session_lines = [line for line in lines if json.loads(line).get("session_id") == session]
    assert stored.splitlines() == session_lines, f"exit status {proxy.process.returncode}; the proxy's stderr ended with:\n{stderr[-3000:]}"


INJECTIONS = ["\r\nX-Evil: 1", "\x1b[31mred\x1b[0m", "\u2028{\"type\":\"login\"}", "\u202eevil", "\x00nul", "\\\"},{\"forged\":true"]


def test_log_injection_cannot_forge_lines(acting):
    proxy, upstream, admin, session = acting
    cookie = session_header(admin.cookie)
    for text in INJECTIONS:
        quoted = urllib.parse.quote(text, safe="")
        # In the path, the query, a header value, and a failed sign-in's username.
        proxy.request(request_bytes("GET", f"/inj/{quoted}?q={quoted}", [cookie, ("X-Note", urllib.parse.quote(text))]))
        proxy.request(request_bytes("POST", "/.actas/login", [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN)],
                                    urllib.parse.urlencode({"username": text, "password": "x", "csrf_token": "y"}).encode()))
    from conftest import post_login
    for text in INJECTIONS:
        post_login(proxy, text, "wrong")
    wait_for(lambda: sum(1 for r in records(proxy) if r["type"] == "login_failed") >= len(INJECTIONS), timeout=5, what="records")
    raw = (proxy.dir / "logs" / "audit.jsonl").read_bytes()
    raw = raw[:raw.rfind(b"\n") + 1]  # a record still being written is read next time
    lines = raw.split(b"\n")
    assert lines[-1] == b""
    for line in lines[:-1]:
        assert b"\r" not in line and b"\x1b" not in line and b"\x00" not in line
        assert "\u2028".encode() not in line and "\u202e".encode() not in line
        record = json.loads(line)
        assert "forged" not in record and isinstance(record["seq"], int)
    parsed = [json.loads(line) for line in lines[:-1]]
    assert [r["seq"] for r in parsed] == list(range(1, len(parsed) + 1))
    verify_chain([line.decode() for line in lines[:-1]])
    # The values survive, escaped: what was sent is what a reader decodes.
    names = [r.get("target") for r in parsed if r["type"] == "login_failed"]
    for text in INJECTIONS:
        assert text.replace("\x00", "\ufffd") in names or text in names


def test_every_request_and_event_is_logged_with_the_spec_fields(acting):
    proxy, upstream, admin, session = acting
    response = admin.get("/orders?id=7", [("Accept", "application/json"), ("X-Request-Id", "client-7")])
    admin.api("DELETE", "/.actas/api/v1/impersonation")
    wait_for(lambda: any(r.get("path") == "/orders" for r in records(proxy)), timeout=3, what="the record")
    record = [r for r in records(proxy) if r.get("path") == "/orders"][0]
    assert list(record)[:3] == ["ts", "seq", "type"] and list(record)[-2:] == ["prev", "hash"]
    assert record["request_id"] == response.header("x-request-id") and record["client_request_id"] == "client-7"
    assert record["method"] == "GET" and record["status"] == 200 and record["query"] == {"id": "7"}
    assert record["user"] == "emp" and record["impersonator"] == "admin" and record["session_id"] == session
    assert record["mode"] == "read-write" and record["client_ip"] == "127.0.0.1" and record["proto"] == "http/1.1"
    assert isinstance(record["duration_ms"], (int, float)) and record["bytes_out"] > 0
    assert record["request_headers"]["cookie"].startswith("__Host-actas_session=[REDACTED]")
    order = ["ts", "seq", "type", "request_id", "client_ip", "method", "path", "query", "status", "duration_ms", "upstream_ms",
             "bytes_in", "bytes_out", "user", "impersonator", "session_id", "mode", "proto", "request_headers", "request_body"]
    keys = [k for k in record if k in order]
    assert keys == sorted(keys, key=order.index)
    assert set(order) - {"request_body"} <= set(record), set(order) - set(record)  # none missing
    # Events are not held for fsync like impersonated requests: the writer takes them at once,
    # but the call that caused one can return before it is written.
    wanted = {"login", "impersonation_started", "impersonation_ended", "request"}
    wait_for(lambda: wanted <= {r["type"] for r in records(proxy)}, timeout=3, what="the session's events")


def test_request_log_for_normal_traffic(make_proxy, upstream):
    proxy = make_proxy({"auth.public_paths": ["/static/*"]})
    import_users(proxy, [{"username": "alice"}])
    cookie = login(proxy, "alice")
    proxy.request(request_bytes("GET", "/plain?password=hunter2", [session_header(cookie)]))
    proxy.request(request_bytes("GET", "/static/x.css"))
    wait_for(lambda: any(r.get("path") == "/static/x.css" for r in records(proxy)), timeout=3, what="records")
    plain = [r for r in records(proxy) if r.get("path") == "/plain"][0]
    assert plain["user"] == "alice" and plain["query"] == {"password": "[REDACTED]"}
    assert "impersonator" not in plain and "request_headers" not in plain  # headers and bodies only while impersonating
    anonymous = [r for r in records(proxy) if r.get("path") == "/static/x.css"][0]
    assert "user" not in anonymous and anonymous["status"] == 200


def test_kill_9_under_load_keeps_every_answered_impersonated_request(acting):
    proxy, upstream, admin, session = acting
    answered = []
    stop = threading.Event()

    def hammer(worker):
        n = 0
        try:
            with proxy.connect() as sock:
                while not stop.is_set():
                    sock.sendall(request_bytes("GET", f"/load/{worker}/{n}", [session_header(admin.cookie)]))
                    response = read_response(sock)
                    if response.status == 200:
                        answered.append(response.header("x-request-id"))
                    n += 1
        except Exception:
            pass  # the proxy dies under us: that is the point

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    proxy.process.send_signal(signal.SIGKILL)
    proxy.process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(answered) > 20
    lines = log_lines(proxy)
    logged = {json.loads(line).get("request_id") for line in lines}
    missing = [rid for rid in answered if rid not in logged]
    assert missing == [], f"{len(missing)} answered impersonated requests are not in the log"
    verify_chain(lines)
    ok = run(["audit", "verify", "--config", str(proxy.config_path), str(proxy.dir / "logs" / "audit.jsonl")], check=False)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: "), ok.stdout + ok.stderr
    # And it starts again, continuing the chain.
    last = json.loads(lines[-1])
    proxy.start()
    Admin(proxy, "admin2")
    wait_for(lambda: any(json.loads(line).get("user") == "admin2" for line in log_lines(proxy)), timeout=5, what="a record after the restart")
    after = log_lines(proxy)
    verify_chain(after)
    first_new = json.loads(after[len(lines)])
    assert first_new["seq"] == last["seq"] + 1 and first_new["prev"] == last["hash"]


def test_impersonated_requests_are_refused_when_the_log_cannot_be_written(acting):
    proxy, upstream, admin, session = acting
    assert admin.fetch("/before").status == 200
    log_path = proxy.dir / "logs" / "audit.jsonl"
    # Make the log unwritable: a directory where the file was. (A read-only folder is no
    # obstacle for root, which CI runs as; nobody can open a directory for appending.)
    log_path.unlink()
    log_path.mkdir()
    try:
        def refused():
            response = admin.fetch("/while-broken")
            return response.status == 503 and json.loads(response.body)["error"] == "audit_unavailable"
        # The first refusal may come after forwarding (the durable write failed, so the
        # response is replaced by 503); once the writer knows it is failing, requests are
        # refused before anything is forwarded.
        wait_for(refused, timeout=5, what="impersonated requests to be refused")
        response = admin.fetch("/while-broken-2")
        assert response.status == 503
        assert all(r["target"] != "/while-broken-2" for r in upstream.requests())
    finally:
        log_path.rmdir()
    wait_for(lambda: admin.fetch("/after-repair").status == 200, timeout=10, what="recovery")


def test_session_audit_in_the_console_for_target_actor_and_auditor_only(acting):
    proxy, upstream, admin, session = acting
    admin.fetch("/secret-report?password=hunter2")
    admin.api("DELETE", "/.actas/api/v1/impersonation")
    emp = Admin(proxy, "emp")
    wait_for(lambda: any(e.get("path") == "/secret-report" for e in emp.api("GET", f"/.actas/api/v1/sessions/{session}/events")[1]["events"]),
             timeout=5, what="the store copy")
    response, body = emp.api("GET", "/.actas/api/v1/sessions")
    assert any(s["id"] == session for s in body["sessions"])
    events = emp.api("GET", f"/.actas/api/v1/sessions/{session}/events")[1]["events"]
    report = [e for e in events if e.get("path") == "/secret-report"][0]
    assert report["query"] == {"password": "[REDACTED]"}
    assert {e["type"] for e in events} >= {"impersonation_started", "request", "impersonation_ended"}
    # The administrator who ran it sees it; another administrator (not an auditor) does not.
    assert admin.api("GET", f"/.actas/api/v1/sessions/{session}/events")[0].status == 200
    import_users(proxy, [{"username": "hr2", "role": "hr_admin", "org_unit": "acme"}])
    outsider = Admin(proxy, "hr2")
    assert outsider.api("GET", f"/.actas/api/v1/sessions/{session}/events")[0].status == 404
    assert outsider.get(f"/.actas/sessions/{session}", [("Accept", "text/html")]).status == 404
    assert all(s["id"] != session for s in outsider.api("GET", "/.actas/api/v1/sessions")[1]["sessions"])
    # Auditors (super_admin is one by default) see every session.
    auditor = Admin(proxy, "admin2")
    assert auditor.api("GET", f"/.actas/api/v1/sessions/{session}/events")[0].status == 200
    page = emp.get(f"/.actas/sessions/{session}", [("Accept", "text/html")])
    assert page.status == 200 and b"/secret-report" in page.body and b"hunter2" not in page.body


def test_impersonated_request_cut_short_by_the_client_is_still_logged_redacted_and_copied(acting):
    """The client leaves mid-response: the record (with its redacted headers) is written from the
    writer thread, chained like any other, and the target can read it."""
    proxy, upstream, admin, session = acting
    sock = proxy.connect()
    sock.sendall(request_bytes("GET", "/big?bytes=200000000&token=S3NT1NEL90",
                               [session_header(admin.cookie), ("Authorization", "Bearer S3NT1NEL91"), ("X-Note", "visible")]))
    sock.settimeout(5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()
    wait_for(lambda: any(r.get("path") == "/big" for r in records(proxy)), timeout=5, what="the record of the cut request")
    record = [r for r in records(proxy) if r.get("path") == "/big"][0]
    assert record["session_id"] == session and record["impersonator"] == "admin" and record["user"] == "emp"
    assert record["detail"] == "the client closed the connection" and record["bytes_out"] < 200_000_000
    assert record["query"] == {"bytes": "200000000", "token": "[REDACTED]"}
    assert record["request_headers"]["authorization"] == "[REDACTED]" and record["request_headers"]["x-note"] == "visible"
    assert "S3NT1NEL9" not in "\n".join(log_lines(proxy))
    verify_chain(log_lines(proxy))
    emp = Admin(proxy, "emp")
    wait_for(lambda: any(e.get("path") == "/big" for e in emp.api("GET", f"/.actas/api/v1/sessions/{session}/events")[1]["events"]),
             timeout=5, what="the store copy")


def test_target_reads_their_session_audit_in_a_browser(tmp_path):
    from browser import chromium_driver, screenshot, sign_in
    from conftest import PASSWORD, free_port
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    proxy = Proxy(tmp_path, free_port(), {"demo.enabled": True, "auth.public_paths": ["/static/*"]})
    try:
        setup_site(proxy)
        admin = Admin(proxy, "admin")
        response, body = admin.start("emp")
        session = body["id"]
        admin.fetch("/api/whoami?token=abc123")
        admin.api("DELETE", "/.actas/api/v1/impersonation")
        driver = chromium_driver()
        try:
            base = f"https://localhost:{proxy.https_port}"
            sign_in(driver, base, "emp", PASSWORD)
            driver.get(base + "/.actas/")
            assert "Ada Admin" in driver.find_element(By.ID, "history-title").find_element(By.XPATH, "..").text
            driver.find_element(By.LINK_TEXT, "Show audit log").click()
            WebDriverWait(driver, 10).until(lambda d: f"/.actas/sessions/{session}" in d.current_url)
            deadline = time.time() + 5
            while "/api/whoami" not in driver.page_source and time.time() < deadline:
                time.sleep(0.3)
                driver.refresh()
            text = driver.find_element(By.TAG_NAME, "main").text
            assert "GET /api/whoami" in text and "[REDACTED]" in text and "abc123" not in text
            screenshot(driver, "audit-target-view")
        finally:
            driver.quit()
    finally:
        proxy.stop()


def test_sighup_reopens_the_log_after_external_rotation_and_the_chain_continues(acting):
    proxy, upstream, admin, session = acting
    admin.fetch("/before-rotation")
    log = proxy.dir / "logs" / "audit.jsonl"
    wait_for(lambda: "/before-rotation" in log.read_text(), timeout=3, what="the record")
    rotated = proxy.dir / "logs" / "audit.jsonl.000000000001"
    log.rename(rotated)  # what logrotate does
    proxy.process.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    admin.fetch("/after-rotation")
    wait_for(lambda: log.exists() and "/after-rotation" in log.read_text(), timeout=5, what="a new file")
    assert "/after-rotation" not in rotated.read_text()
    result = run(["audit", "verify", "--config", str(proxy.config_path), str(rotated), str(log)], check=False)
    assert result.returncode == 0 and result.stdout.startswith("ok: "), result.stdout + result.stderr
    first_new = json.loads(log.read_text().splitlines()[0])
    last_old = json.loads(rotated.read_text().splitlines()[-1])
    assert first_new["seq"] == last_old["seq"] + 1 and first_new["prev"] == last_old["hash"]


def test_log_requests_impersonated_logs_only_impersonated_requests(make_proxy, upstream):
    proxy = make_proxy(config(**{"audit.log_requests": "impersonated"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    admin.fetch("/not-impersonating")
    admin.start("emp")
    admin.fetch("/impersonating")
    wait_for(lambda: any(r.get("path") == "/impersonating" for r in records(proxy)), timeout=3, what="the record")
    paths = [r.get("path") for r in records(proxy) if r["type"] == "request"]
    assert "/not-impersonating" not in paths and "/impersonating" in paths
    assert any(r["type"] == "impersonation_started" for r in records(proxy))
