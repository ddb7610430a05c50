"""`actas audit verify|tail|export` (SPEC §2, §8) against a log written by a real proxy: sign-ins,
failed sign-ins (with hostile usernames), sign-outs and an impersonation session. Tests do not
need `type: request` records, and tolerate them."""
import csv
import datetime
import hashlib
import io
import json
import os
import pty
import queue
import re
import select
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import (
    ACTAS, ORIGIN, PASSWORD, Proxy, Upstream, clean_env, import_users, login, me, post_login, request_bytes, run,
    session_header, wait_for,
)

NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
USERS = [
    {"username": "admin", "role": "super_admin", "org_unit": "acme", "last_login": NOW},
    {"username": "emp", "role": "employee", "org_unit": "acme/emea", "last_login": NOW},
    {"username": "alice", "role": "employee", "org_unit": "acme/emea", "last_login": NOW},
]
CONFIG = {"auth.public_paths": ["/static/*"], "auth.methods": ["password", "token"], "auth.max_failed_logins_per_ip": 10000,
          "auth.max_failed_logins": 1000,
          # Copies of the log are verified without keys here; checkpoints (test_audit_proof.py) come only at rotation.
          "audit.checkpoint_interval": "1h"}
REASON = "Ticket 4711: the report page is blank"
HOSTILE = "x\u001b[31mred\u2028y\u202egnp.exe"
FORMULA = "=cmd|' /C calc'!A0"
WRONG = "not-the-password-123"


# ---- helpers ----------------------------------------------------------------------------------

def chain_ok(paths, anchored=False):
    """An independent verifier (SPEC §8): hash = sha256(prev + "\\n" + L) over the raw bytes, prev links, seq + 1."""
    prev = seq = None
    for path in paths:
        data = Path(path).read_bytes()
        if data and not data.endswith(b"\n"):
            return False
        for line in data.split(b"\n")[:-1]:
            try:
                record, cut = json.loads(line), line.rindex(b',"hash":"')
                L, stated = line[:cut] + b"}", line[cut:] == b',"hash":"%s"}' % record["hash"].encode()
                if not stated or hashlib.sha256(record["prev"].encode() + b"\n" + L).hexdigest() != record["hash"]:
                    return False
            except (ValueError, KeyError, TypeError, AttributeError):
                return False
            expected = (1, "0" * 64) if seq is None else (seq + 1, prev)
            if (record["seq"], record["prev"]) != expected and not (seq is None and anchored):
                return False
            prev, seq = record["hash"], record["seq"]
    return True


def audit(*args, check=None, **kwargs):
    """`actas audit …`; stdout/stderr decoded as UTF-8 without newline translation (CSV keeps its CRLF)."""
    result = subprocess.run([str(ACTAS), "audit", *args], capture_output=True, env=clean_env(), **kwargs)
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    if check is not None:
        assert result.returncode == check, (args, result.returncode, result.stdout, result.stderr)
    return result


def log_path(proxy):
    return proxy.dir / "logs" / "audit.jsonl"


def lines_of(path):
    return Path(path).read_text(encoding="utf-8").splitlines()


def records(path):
    return [json.loads(line) for line in lines_of(path)]


def all_records(proxy):
    """Every record in the live log's files (rotated ones too), tolerating a rename mid-read."""
    found = []
    for path in sorted((proxy.dir / "logs").glob("audit.jsonl*")):
        try:
            found += [json.loads(line) for line in lines_of(path)]
        except (FileNotFoundError, ValueError):
            pass
    return found


def wait_for_record(proxy, predicate, what):
    wait_for(lambda: any(predicate(r) for r in all_records(proxy)), timeout=10, what=what)


def failed_login(proxy, username):
    response = post_login(proxy, username, WRONG)
    assert response.status in (401, 403), response
    wait_for_record(proxy, lambda r: r["type"] == "login_failed" and r.get("target") == username, f"login_failed for {username!r}")


def logout(proxy, cookie):
    token = me(proxy, cookie)["csrf_token"]
    body = urllib.parse.urlencode({"csrf_token": token}).encode()
    response = proxy.request(request_bytes("POST", "/.actas/logout", [
        session_header(cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN), ("Accept", "text/html")], body))
    assert response.status == 303, response


def impersonate_and_exit(proxy, actor, target):
    cookie = login(proxy, actor)
    csrf = me(proxy, cookie)["csrf_token"]
    headers = [session_header(cookie), ("Accept", "application/json"), ("X-CSRF-Token", csrf), ("Origin", ORIGIN),
               ("Content-Type", "application/json")]
    body = json.dumps({"target": target, "reason": REASON}).encode()
    started = {}

    def start():
        response = proxy.request(request_bytes("POST", "/.actas/api/v1/impersonation", headers, body))
        if response.status == 201:
            started.update(json.loads(response.body))
        return response.status == 201
    wait_for(start, timeout=10, what="impersonation to start (consent reaching the server)")
    exit_body = urllib.parse.urlencode({"csrf_token": csrf}).encode()
    response = proxy.request(request_bytes("POST", "/.actas/impersonate/exit", [
        session_header(cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN), ("Accept", "text/html")],
        exit_body))
    assert response.status == 303, response
    session = started["id"]
    wait_for_record(proxy, lambda r: r["type"] == "impersonation_ended" and r.get("session_id") == session, "impersonation_ended")
    return session


class Site:
    def __init__(self, proxy, session):
        self.proxy = proxy
        self.session = session
        self.config = str(proxy.config_path)
        self.log = log_path(proxy)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit_cli")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, CONFIG)
    try:
        import_users(proxy, USERS)
        run(["consent", "grant", "emp", "--hours", "24", "--config", str(proxy.config_path)])
        cookie = login(proxy, "alice")
        failed_login(proxy, "alice")
        failed_login(proxy, HOSTILE)
        failed_login(proxy, FORMULA)
        logout(proxy, cookie)
        wait_for_record(proxy, lambda r: r["type"] == "logout" and r.get("user") == "alice", "logout")
        session = impersonate_and_exit(proxy, "admin", "emp")
        yield Site(proxy, session)
    finally:
        proxy.stop()
        upstream.stop()


def snapshot(site, tmp_path):
    """A copy of the log as it is now (other tests keep appending to the live one)."""
    copy = tmp_path / "copy" / "audit.jsonl"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(site.log, copy)
    return copy


class LineReader:
    """Lines from a subprocess's stdout, with a timeout."""

    def __init__(self, process):
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, args=(process.stdout,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, predicate, timeout=10.0):
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if predicate(line):
                return seen
        raise AssertionError(f"no matching line within {timeout}s; got {seen!r}")


def start_tail(*args):
    return subprocess.Popen([str(ACTAS), "audit", "tail", "-f", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=clean_env())


def stop(process, sig=signal.SIGTERM):
    process.send_signal(sig)
    try:
        return process.wait(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()


# ---- verify -----------------------------------------------------------------------------------

def test_verify_untouched_log_and_independent_verifier_agrees(site, tmp_path):
    copy = snapshot(site, tmp_path)
    count = len(lines_of(copy))
    assert count >= 8
    result = audit("verify", str(copy), check=0)
    assert result.stdout == f"ok: {count} records, last seq {count}\n"
    assert result.stderr == ""
    assert chain_ok([copy])
    # Without FILE: the configured log (and its rotated files, none here).
    configured = audit("verify", "--config", site.config, check=0)
    assert re.fullmatch(r"ok: (\d+) records, last seq \1\n", configured.stdout), configured.stdout


def recompute(line, edit, prev):
    """`line` changed by `edit`, with its own hash recomputed correctly for `prev`."""
    body = line[:line.rindex(b',"hash":"')] + b"}"
    body = edit(body)
    digest = hashlib.sha256(prev.encode() + b"\n" + body).hexdigest().encode()
    return body[:-1] + b',"hash":"' + digest + b'"}'


def tamper(lines, case):
    """Returns (new lines, seq named, 1-based line named)."""
    k = len(lines)
    m = k // 2
    parsed = [json.loads(line) for line in lines]
    alice = next(i for i, r in enumerate(parsed) if r.get("user") == "alice" and i + 1 < k) + 1
    out = list(lines)
    if case == "edit_byte":
        out[alice - 1] = lines[alice - 1].replace(b'"user":"alice"', b'"user":"alicf"')
        return out, alice, alice
    if case == "reorder":
        out[m - 1], out[m] = out[m], out[m - 1]
        return out, m + 1, m
    if case == "delete_middle":
        del out[m - 1]
        return out, m + 1, m
    if case == "delete_first":
        return out[1:], 2, 1
    if case == "duplicate":
        out.insert(m, lines[m - 1])
        return out, m, m + 1
    if case == "truncate_last":
        return out, k, k  # handled by the caller: cut mid-way, no newline
    if case == "append_forged":
        last = parsed[-1]
        body = lines[-1][:lines[-1].rindex(b',"hash":"')] + b"}"
        body = body.replace(b'"seq":%d,' % k, b'"seq":%d,' % (k + 1), 1).replace(last["prev"].encode(), last["hash"].encode(), 1)
        wrong = hashlib.sha256(last["hash"].encode() + body).hexdigest().encode()  # no "\n": looks right, is not
        out.append(body[:-1] + b',"hash":"' + wrong + b'"}')
        return out, k + 1, k + 1
    if case == "edit_and_rehash":
        out[alice - 1] = recompute(lines[alice - 1], lambda b: b.replace(b'"user":"alice"', b'"user":"mallory"'),
                                   parsed[alice - 2]["hash"] if alice > 1 else "0" * 64)
        return out, alice + 1, alice + 1
    raise ValueError(case)


@pytest.mark.parametrize("case", ["edit_byte", "reorder", "delete_middle", "delete_first", "duplicate", "truncate_last",
                                  "append_forged", "edit_and_rehash"])
def test_verify_names_the_first_broken_record(site, tmp_path, case):
    copy = snapshot(site, tmp_path)
    lines = copy.read_bytes().split(b"\n")[:-1]
    tampered, seq, line = tamper(lines, case)
    data = b"\n".join(tampered) + b"\n"
    if case == "truncate_last":
        data = data[:-(len(lines[-1]) // 2)]
    copy.write_bytes(data)
    result = audit("verify", str(copy), check=1)
    assert result.stdout.startswith(f"broken at seq {seq} ({copy}:{line}): "), result.stdout
    assert len(result.stdout.splitlines()) == 1
    assert not chain_ok([copy])
    # The untampered neighbours still verify when the damage is cut away (the verifier is not just failing everything).
    if case in ("edit_byte", "edit_and_rehash"):
        copy.write_bytes(b"\n".join(lines[:seq - 1 if case == "edit_byte" else seq - 2]) + b"\n")
        assert audit("verify", str(copy)).returncode == 0 and chain_ok([copy])


def test_verify_usage_errors(site, tmp_path):
    missing = audit("verify", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert len(missing.stderr.strip().splitlines()) == 1 and "nope.jsonl" in missing.stderr
    directory = audit("verify", str(tmp_path))
    assert directory.returncode == 2 and "directory" in directory.stderr
    # No FILE and no log at the configured place.
    empty_dir = tmp_path / "elsewhere"
    empty_dir.mkdir()
    config = empty_dir / "proxy.conf"
    config.write_text(Path(site.config).read_text())
    nothing = audit("verify", "--config", str(config))
    assert nothing.returncode != 0 and nothing.stdout == "" and len(nothing.stderr.strip().splitlines()) == 1
    for command in ("verify", "tail", "export"):
        help_text = audit(command, "--help", check=0).stdout
        assert "OVERVIEW:" in help_text and "USAGE: actas audit " + command in help_text


# ---- rotation ---------------------------------------------------------------------------------

def test_rotation_keeps_one_chain_across_files_and_tail_follows_it(make_proxy):
    proxy = make_proxy({**CONFIG, "audit.max_file_size": "1KB"})
    import_users(proxy, USERS)
    config = str(proxy.config_path)
    for i in range(6):
        failed_login(proxy, f"rot{i}")
    logs = proxy.dir / "logs"
    # The published keys, for verifying a part of the log without the store (a request record too).
    jwks = proxy.dir / "jwks.json"
    jwks.write_bytes(proxy.request(request_bytes("GET", "/.well-known/actas/jwks.json")).body)

    # Follow from here on, across the rotations still to come.
    follower = start_tail("--json", "-n", "1", "--config", config)
    reader = LineReader(follower)
    first = json.loads(reader.until(lambda line: True)[0])
    for i in range(6, 14):
        failed_login(proxy, f"rot{i}")
    followed_lines = reader.until(lambda line: json.loads(line).get("target") == "rot13", timeout=10)
    followed = [json.loads(line) for line in followed_lines]
    assert stop(follower, signal.SIGINT) == 0

    rotated = sorted(logs.glob("audit.jsonl.*"))
    assert len(rotated) >= 3, rotated
    files = [*rotated, logs / "audit.jsonl"]
    every = [r for f in files for r in records(f)]
    assert [r["seq"] for r in every] == list(range(1, len(every) + 1))
    for f in rotated:  # each rotated file is named for its first seq
        assert int(f.name.rsplit(".", 1)[1]) == records(f)[0]["seq"]
    result = audit("verify", "--config", config, *map(str, files), check=0)
    assert result.stdout == f"ok: {len(every)} records, last seq {len(every)}\n" and result.stderr == ""
    assert chain_ok(files)
    assert audit("verify", "--config", config, check=0).stdout == result.stdout

    # A later file alone passes against an anchor, and says so on stderr (its checkpoints checked against the
    # JWKS: the store would rightly say the log goes on past it).
    later = rotated[1]
    alone = audit("verify", str(later), "--jwks", str(jwks), check=0)
    start = records(later)[0]["seq"]
    assert alone.stdout == f"ok: {len(records(later))} records, last seq {records(later)[-1]['seq']}\n"
    assert f"seq {start}" in alone.stderr and alone.stderr.startswith("note:")
    assert chain_ok([later], anchored=True) and not chain_ok([later])
    # A later file that lost its first record does not.
    cut = proxy.dir / "cut" / later.name
    cut.parent.mkdir()
    cut.write_bytes(b"\n".join(later.read_bytes().split(b"\n")[1:]))
    assert audit("verify", str(cut), "--jwks", str(jwks), check=1).stdout.startswith(f"broken at seq {start + 1} ({cut}:1): ")

    # tail -f saw every record after its starting point exactly once, in order, as logged.
    seqs = [r["seq"] for r in followed]
    assert seqs == list(range(first["seq"] + 1, seqs[-1] + 1)), seqs
    by_seq = {json.loads(line)["seq"]: line for f in files for line in lines_of(f)}
    assert followed_lines == [by_seq[seq] for seq in seqs]
    # tail without -f reaches back through the rotated files; export reads them all in chain order.
    back = audit("tail", "--json", "-n", "1000", "--config", config, check=0).stdout.splitlines()
    assert back == [line for f in files for line in lines_of(f)]
    exported = json.loads(audit("export", "--format", "json", "--config", config, check=0).stdout)
    assert [r["seq"] for r in exported] == [r["seq"] for r in every]


# ---- tail -------------------------------------------------------------------------------------

def test_tail_last_n_as_logged(site):
    three = audit("tail", "--json", "-n", "3", "--config", site.config, check=0).stdout.splitlines()
    assert three == lines_of(site.log)[-3:]
    default = audit("tail", "--json", "--config", site.config, check=0).stdout.splitlines()
    assert default == lines_of(site.log)[-20:]
    assert audit("tail", "--json", "-n", "0", "--config", site.config, check=0).stdout == ""
    # --file instead of the configuration.
    assert audit("tail", "--json", "-n", "2", "--file", str(site.log), check=0).stdout.splitlines() == lines_of(site.log)[-2:]


def test_tail_filters(site):
    def tail(*args):
        out = audit("tail", "--json", "-n", "1000", "--config", site.config, *args, check=0).stdout.splitlines()
        return out

    lines = lines_of(site.log)
    parsed = [json.loads(line) for line in lines]
    expect = lambda keep: [line for line, r in zip(lines, parsed) if keep(r)]
    alice = tail("--user", "alice")
    assert alice == expect(lambda r: "alice" in (r.get("user"), r.get("target")))
    assert {"login", "login_failed", "logout"} <= {json.loads(line)["type"] for line in alice}
    failed = tail("--type", "login_failed")
    assert failed == expect(lambda r: r["type"] == "login_failed") and len(failed) >= 3
    assert tail("--type", "login", "--type", "logout") == tail("--type", "login,logout") == expect(lambda r: r["type"] in ("login", "logout"))
    session = tail("--session", site.session)
    assert session == expect(lambda r: r.get("session_id") == site.session)
    assert {"impersonation_started", "impersonation_ended"} <= {json.loads(line)["type"] for line in session}
    assert tail("--actor", "admin", "--type", "impersonation_started") == expect(
        lambda r: r["type"] == "impersonation_started" and r.get("impersonator") == "admin")
    assert tail("--user", "nobody-at-all") == []
    bad = audit("tail", "--type", "nope", "--config", site.config)
    assert bad.returncode != 0 and "nope" in bad.stderr


def test_tail_human_output_cannot_drive_the_terminal(site):
    result = audit("tail", "-n", "1000", "--config", site.config, check=0)
    out = result.stdout
    for raw in ("\x1b", "\r", "\u2028", "\u2029", "\u202e", "\x9b"):
        assert raw not in out, repr(raw)
    assert "x\\u001b[31mred\\u2028y\\u202egnp.exe" in out
    assert len(out.splitlines()) == len(lines_of(site.log))  # one line per record
    assert PASSWORD not in out and WRONG not in out
    line = next(line for line in out.splitlines() if " login_failed " in line and "alice" in line)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  login_failed  alice  ", line), line
    started = next(line for line in out.splitlines() if "impersonation_started" in line)
    assert "admin as emp" in started and site.session in started and REASON in started
    ended = next(line for line in out.splitlines() if "impersonation_ended" in line)
    assert "end_reason=exit" in ended

    # On a terminal: colour, but still never the hostile sequence; NO_COLOR turns colour off.
    def on_tty(env_extra):
        master, slave = pty.openpty()
        env = {k: v for k, v in clean_env().items() if k != "NO_COLOR"}
        process = subprocess.Popen([str(ACTAS), "audit", "tail", "-n", "1000", "--config", site.config],
                                   stdout=slave, stderr=subprocess.PIPE, env={**env, "TERM": "xterm", **env_extra})
        os.close(slave)
        data = b""
        while True:
            ready, _, _ = select.select([master], [], [], 10)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        process.wait(timeout=10)
        os.close(master)
        return data.decode()

    coloured = on_tty({})
    assert "\x1b[" in coloured and "\x1b[31mred" not in coloured and "\u2028" not in coloured and "\u202e" not in coloured
    assert "x\\u001b[31mred\\u2028y" in coloured
    plain = on_tty({"NO_COLOR": "1"})
    assert "\x1b" not in plain and "x\\u001b[31mred" in plain


def test_tail_follow_sees_new_records_and_stops_cleanly(site):
    follower = start_tail("--json", "-n", "1", "--type", "login_failed", "--config", site.config)
    reader = LineReader(follower)
    reader.until(lambda line: json.loads(line)["type"] == "login_failed")
    failed_login(site.proxy, "follow-me")
    new = reader.until(lambda line: json.loads(line).get("target") == "follow-me")
    assert new[-1] in lines_of(site.log)
    assert stop(follower, signal.SIGTERM) == 0

    # Human format while following.
    follower = start_tail("-n", "0", "--user", "follow-me-2", "--config", site.config)
    reader = LineReader(follower)
    time.sleep(0.5)
    failed_login(site.proxy, "follow-me-2")
    line = reader.until(lambda line: "follow-me-2" in line)[-1]
    assert "login_failed" in line and "reason=unknown_user" in line
    assert stop(follower, signal.SIGINT) == 0


def test_tail_follow_survives_several_rotations_between_polls(site, tmp_path):
    """Rotations faster than tail polls: every record once, in order; then copytruncate and a missing file."""
    lines = [line.encode() + b"\n" for line in lines_of(site.log)][:20]
    assert len(lines) == 20
    logs = tmp_path / "logs"
    logs.mkdir()
    current = logs / "audit.jsonl"
    current.write_bytes(b"".join(lines[0:3]))
    follower = start_tail("--json", "-n", "1", "--file", str(current))
    reader = LineReader(follower)
    assert reader.until(lambda line: True) == [lines[2].decode().rstrip("\n")]

    def rotate(first_seq):
        current.rename(logs / f"audit.jsonl.{first_seq:012d}")

    # Three rotations within a millisecond or so.
    with open(current, "ab") as f:
        f.write(b"".join(lines[3:6]))
    rotate(1)
    current.write_bytes(b"".join(lines[6:9]))
    rotate(7)
    current.write_bytes(b"".join(lines[9:12]))
    rotate(10)
    current.write_bytes(b"".join(lines[12:15]))
    got = reader.until(lambda line: json.loads(line)["seq"] == 15)
    assert got == [line.decode().rstrip("\n") for line in lines[3:15]]
    # Truncated in place and rewritten (copytruncate): the new content is read from its start.
    current.write_bytes(lines[15])
    assert reader.until(lambda line: True) == [lines[15].decode().rstrip("\n")]
    # Gone for a while, then back.
    rotate(16)
    time.sleep(0.5)
    current.write_bytes(b"".join(lines[16:18]))
    assert reader.until(lambda line: json.loads(line)["seq"] == 18) == [line.decode().rstrip("\n") for line in lines[16:18]]
    assert stop(follower) == 0
    assert reader.lines.get(timeout=5) is None  # nothing else was printed


def test_tail_without_a_log_file(site, tmp_path):
    config = site.proxy.dir / "stdout-log.conf"
    text = Path(site.config).read_text()
    assert 'file = "logs/audit.jsonl"' in text
    config.write_text(text.replace('file = "logs/audit.jsonl"', 'file = "-"'))
    result = audit("tail", "--config", str(config))
    assert result.returncode != 0 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and '"-"' in result.stderr and "--file" in result.stderr
    missing = audit("tail", "--file", str(tmp_path / "none.jsonl"))
    assert missing.returncode != 0 and "none.jsonl" in missing.stderr


# ---- export -----------------------------------------------------------------------------------

def parse_ts(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def export(site, *args, check=0):
    return audit("export", "--config", site.config, *args, check=check)


def test_export_json_window(site, tmp_path):
    copy = snapshot(site, tmp_path)
    lines = lines_of(copy)
    parsed = [json.loads(line) for line in lines]
    everything = json.loads(audit("export", "--format", "json", str(copy), "--from", "2000-01-01", "--to", "2100-01-01", check=0).stdout)
    assert everything == parsed
    # [from, to): from is inclusive, to exclusive, RFC 3339 with any offset.
    middle = parsed[len(parsed) // 2]
    at = middle["ts"]
    from_here = json.loads(audit("export", "--format", "json", str(copy), "--from", at, check=0).stdout)
    assert from_here == [r for r in parsed if parse_ts(r["ts"]) >= parse_ts(at)] and middle in from_here
    before = json.loads(audit("export", "--format", "json", str(copy), "--to", at, check=0).stdout)
    assert before == [r for r in parsed if parse_ts(r["ts"]) < parse_ts(at)] and middle not in before
    shifted = (parse_ts(at) + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00"
    assert json.loads(audit("export", "--format", "json", str(copy), "--from", shifted, check=0).stdout) == from_here
    # Dates are midnight UTC: today's records are in [today, tomorrow), none before today.
    today = datetime.datetime.now(datetime.timezone.utc).date()
    first_day = parse_ts(parsed[0]["ts"]).date()
    if first_day == today:
        tomorrow = today + datetime.timedelta(days=1)
        assert json.loads(audit("export", "--format", "json", str(copy), "--from", str(today), "--to", str(tomorrow), check=0).stdout) == parsed
        assert audit("export", "--format", "json", str(copy), "--to", str(today), check=0).stdout.strip() == "[]"
    # A window with nothing in it.
    empty = export(site, "--format", "json", "--from", "2001-01-01", "--to", "2001-01-02")
    assert json.loads(empty.stdout) == [] and empty.stdout.strip() == "[]"
    # --output writes the same bytes, only when complete.
    target = tmp_path / "out.json"
    written = audit("export", "--format", "json", str(copy), "--output", str(target), check=0)
    assert written.stdout == "" and json.loads(target.read_text()) == parsed
    assert not list(tmp_path.glob("out.json.partial-*"))
    # From the configuration (all files of the live log, in chain order).
    live = json.loads(export(site, "--format", "json").stdout)
    assert [r["seq"] for r in live][:len(parsed)] == [r["seq"] for r in parsed]


def test_export_csv_is_rfc4180_and_neutralises_formulas(site, tmp_path):
    copy = snapshot(site, tmp_path)
    parsed = records(copy)
    result = audit("export", "--format", "csv", str(copy), "--from", "2000-01-01", "--to", "2100-01-01", check=0)
    assert "\r\n" in result.stdout
    rows = list(csv.reader(io.StringIO(result.stdout, newline="")))
    header, body = rows[0], rows[1:]
    assert header[:7] == ["ts", "seq", "type", "request_id", "client_ip", "method", "path"]
    for column in ("status", "duration_ms", "user", "impersonator", "session_id", "mode", "reason", "end_reason", "target",
                   "query", "request_headers", "request_body", "hash"):
        assert column in header
    assert len(body) == len(parsed) and all(len(row) == len(header) for row in body)
    cell = lambda row, name: row[header.index(name)]
    assert [int(cell(row, "seq")) for row in body] == [r["seq"] for r in parsed]
    for row in body:
        for value in row:
            assert not value or value[0] not in "=+-@\t\r", value
            assert "\x1b" not in value and "\u2028" not in value and "\u202e" not in value
        for name in ("query", "request_headers", "request_body"):
            if cell(row, name):
                assert isinstance(json.loads(cell(row, name)), (dict, list))
    formula = [row for row in body if cell(row, "target") == "'" + FORMULA]
    assert len(formula) == 1 and cell(formula[0], "type") == "login_failed"
    hostile = [row for row in body if cell(row, "target").startswith("x\\u001b[31mred")]
    assert len(hostile) == 1
    session = [row for row in body if cell(row, "session_id") == site.session]
    assert {cell(row, "type") for row in session} >= {"impersonation_started", "impersonation_ended"}
    assert any(cell(row, "type") == "impersonation_started" and cell(row, "justification") == REASON for row in session)
    # Empty window: the header only.
    empty = export(site, "--format", "csv", "--from", "2001-01-01", "--to", "2001-01-02")
    assert empty.stdout == ",".join(header) + "\r\n"


@pytest.mark.parametrize("args", [
    ["--from", "yesterday"],
    ["--from", "2026-13-01"],
    ["--to", "2026-11-01T25:00:00Z"],
    ["--from", "2026-11-02", "--to", "2026-11-01"],
])
def test_export_rejects_bad_times_with_one_line(site, args):
    result = export(site, "--format", "json", *args, check=None)
    assert result.returncode != 0 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and ("--from" in result.stderr or "--to" in result.stderr)
