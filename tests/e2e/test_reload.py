"""Configuration as an operator changes it: SIGHUP reloads policy, console, sign-in and audit
settings for every decision made after it (issue 14 item 8), and an environment override
rescues a bad file value (issue 14 item 9)."""
import json
import signal
import time
import subprocess

from conftest import (ACTAS, admin_get, clean_env, complete_lines, get, import_users, login, me, post_login,
                      request_bytes, run, session_header, set_cookies, wait_for)


# ---- environment overrides (item 9) -------------------------------------------------------

def test_env_override_rescues_a_bad_file_value_in_check_and_serve(make_proxy):
    proxy = make_proxy(start=False)
    proxy.write_config({"impersonation.max_duration": "forever"})
    line = next(number for number, text in enumerate(proxy.config_path.read_text().splitlines(), 1)
                if text.startswith("max_duration"))
    env = {**clean_env(), "ACTAS_IMPERSONATION_MAX_DURATION": "2h"}

    # Without the override the file value is an error, as before.
    bad = run(["check", "--config", str(proxy.config_path)], check=False)
    assert bad.returncode == 2 and f"proxy.conf:{line}: impersonation.max_duration" in bad.stderr

    checked = subprocess.run([str(ACTAS), "check", "--config", str(proxy.config_path)],
                             capture_output=True, text=True, env=env)
    assert checked.returncode == 0, checked.stderr
    assert f"warning: {proxy.config_path}:{line}: impersonation.max_duration: " in checked.stderr
    assert "ACTAS_IMPERSONATION_MAX_DURATION overrides it" in checked.stderr

    proxy.stderr = open(proxy.stderr_path, "a")
    proxy.process = subprocess.Popen([str(ACTAS), "serve", "--config", str(proxy.config_path)],
                                     stdout=proxy.stderr, stderr=proxy.stderr, env=env)
    wait_for(proxy.ready, what="actas /readyz")
    assert proxy.request(get("/")).status == 200
    stderr = proxy.stderr_path.read_text()
    assert f"{proxy.config_path}:{line}: impersonation.max_duration: " in stderr
    assert "ACTAS_IMPERSONATION_MAX_DURATION overrides it" in stderr


# ---- SIGHUP reloads policy, sign-in and audit settings (item 8) ---------------------------

from test_impersonation import REASON, Admin, config, setup_site  # noqa: E402


def reload(proxy, settings):
    """Rewrites proxy.conf with `settings`, sends SIGHUP and returns once the server says it
    reloaded (the reload applies everything before it prints that line)."""
    done = f"reloaded {proxy.config_path}"  # the log line's message, in its text and JSON forms alike
    before = proxy.stderr_path.read_text().count(done)
    proxy.write_config(settings)
    proxy.process.send_signal(signal.SIGHUP)
    wait_for(lambda: proxy.stderr_path.read_text().count(done) > before, what="reload")


def test_reload_lowers_max_duration_for_new_and_running_sessions(make_proxy, upstream):
    settings = config(**{"impersonation.max_duration": "24h", "impersonation.default_duration": "1h"})
    proxy = make_proxy(settings)
    setup_site(proxy)
    admin, other = Admin(proxy, "admin"), Admin(proxy, "admin2")
    long_one, body = admin.start("emp", duration="10h")
    assert long_one.status == 201, body
    short_one, body2 = other.start("far", duration="10h")
    assert short_one.status == 201, body2
    started = time.time()

    reload(proxy, {**settings, "impersonation.max_duration": "2h"})
    # A new start asking for 10h gets the new maximum.
    hr = Admin(proxy, "hr")
    response, fresh = hr.start("emp", duration="10h")
    assert response.status == 201, fresh
    assert parse(fresh["expires_at"]) - parse(fresh["started_at"]) == 7200
    # A running session's end moved to its start + the new maximum.
    mine = me(proxy, admin.cookie)["impersonation"]
    assert mine["id"] == body["id"] and parse(mine["expires_at"]) - parse(body["started_at"]) <= 7200

    # Lowered below what a running session has already run: it ends before anything more is
    # forwarded as the target.
    wait_for(lambda: time.time() - started > 1.2, what="the session to run past one second")
    reload(proxy, {**settings, "impersonation.max_duration": "1s", "impersonation.default_duration": "1s"})
    refused = other.fetch("/after-the-new-maximum")
    assert refused.status == 403, refused
    ended = json.loads(refused.body)
    assert ended["error"] == "impersonation_ended" and ended["end_reason"] == "expired"
    assert all(r["target"] != "/after-the-new-maximum" for r in upstream.requests())


def test_reload_removing_a_role_from_impersonators_ends_its_sessions(make_proxy, upstream):
    settings = config()
    proxy = make_proxy(settings)
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    response, body = admin.start("emp")
    assert response.status == 201, body
    assert admin.fetch("/as-emp").status == 200

    reload(proxy, {**settings, "roles.impersonators": ["owner", "hr_admin"]})
    refused = admin.fetch("/no-longer-allowed")
    assert refused.status == 403, refused
    assert json.loads(refused.body)["end_reason"] == "actor_lost_permission"
    assert all(r["target"] != "/no-longer-allowed" for r in upstream.requests())
    response, body = admin.start("emp")
    assert response.status == 403 and body["error"] == "not_permitted", body


def test_reload_applies_redact_keys_to_queries_and_bodies(make_proxy, upstream):
    settings = config()
    proxy = make_proxy(settings)
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    assert admin.fetch("/plain?favourite_pin=1111").status == 200
    reload(proxy, {**settings, "audit.redact_keys": ["password", "favourite_pin"]})
    assert admin.fetch("/plain?favourite_pin=2222").status == 200
    response, body = admin.start("emp")
    assert response.status == 201, body
    sent = proxy.request(request_bytes("POST", "/form", [
        session_header(admin.cookie), ("Content-Type", "application/json"), ("Origin", "https://localhost")],
        json.dumps({"favourite_pin": "3333", "colour": "blue"}).encode()))
    assert sent.status == 200, sent
    log = proxy.dir / "logs" / "audit.jsonl"
    wait_for(lambda: '"/form"' in log.read_text() and "2222" not in log.read_text() and "blue" in log.read_text(),
             timeout=5, what="the records after the reload")
    text = log.read_text()
    assert "1111" in text  # before the reload the key was not secret
    assert "2222" not in text and "3333" not in text


def test_reload_applies_session_ttl_public_paths_and_sign_in_limits(make_proxy, upstream):
    settings = config()
    proxy = make_proxy(settings)
    setup_site(proxy)
    assert "Max-Age=43200" in set_cookies(post_login(proxy, "admin"))["__Host-actas_session"][1]
    assert proxy.request(get("/opened-later")).status in (302, 401)

    reload(proxy, {**settings, "auth.session_ttl": "1h", "auth.public_paths": ["/static/*", "/opened-later"],
                   "auth.max_failed_logins": 1})
    assert "Max-Age=3600" in set_cookies(post_login(proxy, "admin"))["__Host-actas_session"][1]
    assert proxy.request(get("/opened-later")).status == 200
    assert post_login(proxy, "mgr", "wrong").status == 401
    limited = post_login(proxy, "mgr", "wrong again")
    assert limited.status == 429 and limited.header("retry-after") is not None


def test_reload_says_what_still_needs_a_restart(make_proxy, upstream):
    settings = config()
    proxy = make_proxy(settings)
    reload(proxy, {**settings, "audit.file": "logs/elsewhere.jsonl", "impersonation.max_duration": "2h"})
    stderr = proxy.stderr_path.read_text()
    assert "audit.file changed; it takes effect at the next restart" in stderr
    assert "keep the running values" not in stderr


def parse(text):
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
