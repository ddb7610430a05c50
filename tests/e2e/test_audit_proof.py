"""`actas audit verify` against a log a real `actas serve` wrote with signed checkpoints (SPEC §10.6):
whoever can write the log file can edit it, delete lines, cut its tail or rewrite all of it with a
freshly computed chain; each is reported with the right seq, checked against the store's key ring
(--config) or, for a security team without store access, against the published JWKS (--jwks)."""
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from conftest import ACTAS, Proxy, Upstream, clean_env, complete_lines, request_bytes

INSTANCE = "edge-proof-1"
EVERY = 5


def audit(*args, cwd=None):
    result = subprocess.run([str(ACTAS), "audit", *map(str, args)], capture_output=True, text=True, env=clean_env(), cwd=cwd)
    return result


def browse(proxy, count, prefix="page"):
    for n in range(count):
        assert proxy.request(request_bytes("GET", f"/{prefix}/{n}")).status == 200


def fetch_jwks(proxy, path):
    response = proxy.request(request_bytes("GET", "/.well-known/actas/jwks.json"))
    assert response.status == 200, response
    path.write_bytes(response.body)
    return path


class Site:
    def __init__(self, proxy, jwks):
        self.proxy, self.jwks = proxy, jwks
        self.config = str(proxy.config_path)
        self.log = proxy.dir / "logs" / "audit.jsonl"
        self.lines = [line.encode() for line in complete_lines(self.log)]
        self.records = [json.loads(line) for line in self.lines]
        self.checkpoints = [r["seq"] for r in self.records if r["type"] == "checkpoint"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A log of some twenty requests with a checkpoint after every five and one at shutdown."""
    tmp = tmp_path_factory.mktemp("audit_proof")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, {
        "listen.instance_id": INSTANCE, "audit.checkpoint_every": EVERY, "audit.checkpoint_interval": "1h"})
    try:
        jwks = fetch_jwks(proxy, tmp / "jwks.json")
        browse(proxy, 21)
        proxy.stop()
        site = Site(proxy, jwks)
        assert len(site.checkpoints) >= 4 and site.records[-1]["type"] == "checkpoint", site.records
        yield site
    finally:
        proxy.stop()
        upstream.stop()


def copy_of(site, tmp_path, lines=None):
    path = tmp_path / "copy" / "audit.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in (site.lines if lines is None else lines)))
    return path


def rechain(lines, start=0):
    """The lines with `prev` and `hash` recomputed from line `start` on (SPEC §8), as a rewriter would."""
    out = list(lines[:start])
    prev = json.loads(out[-1])["hash"] if out else "0" * 64
    for line in lines[start:]:
        body = line[:line.rindex(b',"hash":"')]
        body = re.sub(rb',"prev":"[0-9a-f]{64}"$', b',"prev":"' + prev.encode() + b'"', body) + b"}"
        digest = hashlib.sha256(prev.encode() + b"\n" + body).hexdigest()
        out.append(body[:-1] + b',"hash":"' + digest.encode() + b'"}')
        prev = digest
    return out


def resigned(line, key, kid):
    """A checkpoint line signed by `key` (ES256 over covers.head.instance, R ‖ S base64url)."""
    record = json.loads(line)
    message = f'{record["covers"]}.{record["head"]}.{record["instance"]}'.encode()
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    sig = base64.urlsafe_b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).rstrip(b"=")
    line = re.sub(rb'"kid":"[^"]*"', b'"kid":"' + kid.encode() + b'"', line)
    return re.sub(rb'"sig":"[^"]*"', b'"sig":"' + sig + b'"', line)


def verify_both_ways(site, path, tmp_path):
    """`audit verify` with the store's key ring and with --jwks in a directory without proxy.conf."""
    elsewhere = tmp_path / "no-config"
    elsewhere.mkdir(exist_ok=True)
    return audit("verify", "--config", site.config, path), audit("verify", path, "--jwks", site.jwks, cwd=elsewhere)


def test_the_log_as_written_verifies_with_the_key_ring_and_with_the_jwks(site, tmp_path):
    path = copy_of(site, tmp_path)
    with_store, with_jwks = verify_both_ways(site, path, tmp_path)
    expected = f"ok: {len(site.lines)} records, last seq {len(site.lines)}\n"
    assert (with_store.returncode, with_store.stdout, with_store.stderr) == (0, expected, "")
    assert (with_jwks.returncode, with_jwks.stdout) == (0, expected)
    assert "without the store" in with_jwks.stderr  # a cut tail needs the store: said, not hidden
    # The configured log itself, found through proxy.conf.
    assert audit("verify", "--config", site.config).stdout == expected


def test_a_one_byte_edit_is_a_broken_chain_at_its_seq(site, tmp_path):
    seq = 7
    lines = list(site.lines)
    assert b'"path":"/page/' in lines[seq - 1]
    lines[seq - 1] = lines[seq - 1].replace(b'"path":"/page/', b'"path":"/pagf/', 1)
    path = copy_of(site, tmp_path, lines)
    for result in verify_both_ways(site, path, tmp_path):
        assert result.returncode == 1
        assert result.stdout.startswith(f"broken at seq {seq} ({path}:{seq}): "), result.stdout
        assert len(result.stdout.splitlines()) == 1


def test_a_deleted_line_is_a_broken_chain_at_the_next_seq(site, tmp_path):
    lines = list(site.lines)
    del lines[8]  # seq 9
    path = copy_of(site, tmp_path, lines)
    for result in verify_both_ways(site, path, tmp_path):
        assert result.returncode == 1
        assert result.stdout.startswith(f"broken at seq 10 ({path}:9): "), result.stdout


def test_a_cut_tail_is_truncated_before_the_stores_last_checkpoint(site, tmp_path):
    last = site.checkpoints[-1]
    assert last == len(site.lines)
    for keep in (len(site.lines) - 1, site.checkpoints[-2], site.checkpoints[0] - 2):
        path = copy_of(site, tmp_path, site.lines[:keep])
        result = audit("verify", "--config", site.config, path)
        assert (result.returncode, result.stdout) == (1, f"truncated: log ends at seq {keep}, store has checkpoint {last}\n"), result
    # The chain of what is left is intact: only the store can tell, and --jwks says it cannot.
    alone = audit("verify", path, "--jwks", site.jwks, cwd=tmp_path)
    assert alone.returncode == 0 and "without the store" in alone.stderr


def test_a_full_rewrite_with_a_fresh_chain_fails_at_its_first_checkpoint(site, tmp_path):
    lines = list(site.lines)
    assert b'"path":"/page/0"' in lines[1]
    lines[1] = lines[1].replace(b'"path":"/page/0"', b'"path":"/forged"')
    rewritten = rechain(lines)  # every hash recomputed; the signed checkpoints copied as they were
    path = copy_of(site, tmp_path, rewritten)
    assert audit("verify", path, "--jwks", site.jwks, cwd=tmp_path).stdout.splitlines()[0] \
        == f"checkpoint {site.checkpoints[0]}: head does not match"
    result = audit("verify", "--config", site.config, path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"checkpoint {seq}: head does not match" for seq in site.checkpoints]


def test_a_rewrite_that_drops_the_checkpoints_is_caught_by_the_store(site, tmp_path):
    # Same number of records, no checkpoint left to betray the new chain.
    lines = [line for line in site.lines if b'"type":"checkpoint"' not in line]
    lines += lines[-len(site.checkpoints):]
    renumbered = [re.sub(rb'"seq":\d+', b'"seq":%d' % (n + 1), line, count=1) for n, line in enumerate(lines)]
    path = copy_of(site, tmp_path, rechain(renumbered))
    result = audit("verify", "--config", site.config, path)
    assert (result.returncode, result.stdout) == (1, f"checkpoint {site.checkpoints[-1]}: head does not match\n"), result


def test_a_checkpoint_signed_by_an_unknown_key_is_a_bad_signature(site, tmp_path):
    first = site.checkpoints[0]
    lines = list(site.lines)
    attacker = ec.generate_private_key(ec.SECP256R1())
    lines[first - 1] = resigned(lines[first - 1], attacker, "attacker-key")
    path = copy_of(site, tmp_path, rechain(lines, first - 1))
    # The chain was recomputed from there on, so the later checkpoints no longer match either.
    expected = [f"checkpoint {first}: bad signature"] + [f"checkpoint {seq}: head does not match" for seq in site.checkpoints[1:]]
    for result in verify_both_ways(site, path, tmp_path):
        assert (result.returncode, result.stdout.splitlines()) == (1, expected), result
        assert "attacker-key" in result.stderr


def test_a_changed_signature_is_a_bad_signature(site, tmp_path):
    second = site.checkpoints[1]
    lines = list(site.lines)
    record = json.loads(lines[second - 1])
    flipped = ("A" if record["sig"][5] != "A" else "B")
    lines[second - 1] = lines[second - 1].replace(record["sig"].encode(), (record["sig"][:5] + flipped + record["sig"][6:]).encode())
    path = copy_of(site, tmp_path, rechain(lines, second - 1))
    expected = [f"checkpoint {second}: bad signature"] + [f"checkpoint {seq}: head does not match" for seq in site.checkpoints[2:]]
    for result in verify_both_ways(site, path, tmp_path):
        assert (result.returncode, result.stdout.splitlines()) == (1, expected), result


def test_without_keys_a_log_with_checkpoints_is_not_called_ok(site, tmp_path):
    path = copy_of(site, tmp_path)
    result = audit("verify", path, cwd=tmp_path)  # no proxy.conf here, no --jwks
    assert result.returncode == 2 and result.stdout == ""
    assert "--jwks" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    bad = audit("verify", path, "--jwks", tmp_path / "nope.json", cwd=tmp_path)
    assert bad.returncode == 2 and "nope.json" in bad.stderr
    (tmp_path / "not-jwks.json").write_text("[1,2]")
    assert audit("verify", path, "--jwks", tmp_path / "not-jwks.json", cwd=tmp_path).returncode == 2


def test_a_log_rotated_many_times_still_verifies(tmp_path):
    upstream = Upstream(tmp_path)
    (tmp_path / "proxy").mkdir()
    proxy = Proxy(tmp_path / "proxy", upstream.port, {
        "listen.instance_id": INSTANCE, "audit.checkpoint_every": 7, "audit.checkpoint_interval": "1h",
        "audit.max_file_size": "1KB"})
    try:
        jwks = fetch_jwks(proxy, tmp_path / "jwks.json")
        browse(proxy, 40)
        proxy.stop()
    finally:
        proxy.stop()
        upstream.stop()
    logs = proxy.dir / "logs"
    files = sorted(logs.glob("audit.jsonl.*")) + [logs / "audit.jsonl"]
    assert len(files) >= 10, files
    total = sum(len(complete_lines(f)) for f in files)
    expected = f"ok: {total} records, last seq {total}\n"
    configured = audit("verify", "--config", proxy.config_path)
    assert (configured.returncode, configured.stdout, configured.stderr) == (0, expected, "")
    given = audit("verify", *files, "--jwks", jwks, cwd=tmp_path)
    assert (given.returncode, given.stdout) == (0, expected)
    # Lose the newest files: the store still knows the last checkpoint.
    cut = audit("verify", "--config", proxy.config_path, *files[:-3])
    last_kept = json.loads(complete_lines(files[-4])[-1])["seq"]
    assert cut.stdout == f"truncated: log ends at seq {last_kept}, store has checkpoint {total}\n", cut
