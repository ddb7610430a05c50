"""Configuration as an operator changes it: SIGHUP reloads policy, console, sign-in and audit
settings for every decision made after it (issue 14 item 8), and an environment override
rescues a bad file value (issue 14 item 9)."""
import json
import signal
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
