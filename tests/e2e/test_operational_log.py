"""What `actas serve` says about itself (SPEC §10.2's outage and recovery, the instances sharing
a store) goes through one swift-log handler: one JSON object a line when stderr is a file or a
pipe (systemd, Docker), `time level logger: message` lines on a terminal. A command's answer to
its user (a bad argument) stays a plain line."""
import json
import os
import pty
import re
import select
import signal
import subprocess

from conftest import ACTAS, clean_env, wait_for
from postgres_fixtures import pg_pair, pg_site_database, pg_site_template, postgres_server  # noqa: F401


def records(proxy):
    """Every line of the proxy's stderr, parsed: a line that is not a JSON object fails here."""
    lines = [line for line in proxy.stderr_path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(record, dict) for record in parsed), lines
    return parsed


def test_serve_logs_json_lines_when_stderr_is_not_a_terminal(make_proxy):
    proxy = make_proxy()
    started = records(proxy)
    listening = [r for r in started if r["message"].startswith("listening on https://")]
    assert len(listening) == 1, started
    record = listening[0]
    assert list(record)[:5] == ["ts", "level", "logger", "message", "source"], record
    assert record["level"] == "info" and record["logger"] == "actas", record
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"]), record
    assert f"admin http://127.0.0.1:{proxy.admin_port}" in record["message"], record


def test_serve_logs_text_lines_on_a_terminal(make_proxy):
    proxy = make_proxy(start=False)
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(ACTAS), "serve", "--config", str(proxy.config_path)],
                               stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=clean_env())
    os.close(follower)
    output = b""
    try:
        def said_listening():
            nonlocal output
            if select.select([leader], [], [], 0.2)[0]:
                output += os.read(leader, 65536)
            return b"listening on https://" in output
        wait_for(said_listening, what="the listening line on the terminal")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        os.close(leader)
    line = next(line for line in output.decode().splitlines() if "listening on https://" in line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info actas: listening on https://\S+ .*admin http://127\.0\.0\.1:"
                        + str(proxy.admin_port) + r"\b.*", line.strip()), line
    assert not line.lstrip().startswith("{"), line


def test_each_instance_logs_the_other_sharing_the_store(pg_pair):
    first, second = pg_pair

    def seen(proxy, other):
        return [r for r in records(proxy)
                if r.get("metadata", {}).get("instance_seen", "").endswith(f":{other.admin_port}")]
    # The second sees the first at its first heartbeat; the first sees the second at its next.
    wait_for(lambda: seen(first, second) and seen(second, first), timeout=30, what="both instances logging the other")
    assert not seen(first, first) and not seen(second, second)  # nobody reports itself
    record = seen(first, second)[0]
    assert record["level"] == "info" and f"admin 127.0.0.1:{second.admin_port}" in record["message"], record
    second.stop()
    wait_for(lambda: any(r.get("metadata", {}).get("instance_gone", "").endswith(f":{second.admin_port}") for r in records(first)),
             timeout=30, what="the first logging that the second stopped")


def test_a_command_answer_stays_one_plain_line_even_when_it_echoes_a_line_break(proxy):
    result = subprocess.run([str(ACTAS), "users", "add", "bad\nname", "--config", str(proxy.config_path)],
                            capture_output=True, text=True, env=clean_env(), timeout=60)
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and not lines[0].startswith("{") and "\\u000a" in lines[0], result.stderr
