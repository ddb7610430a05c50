"""Checkpoints signed by keys that rotation later deleted still verify (SPEC §10.6): the
store keeps each deleted key's public half. An operator rotates the assertion key twice
(`actas keys rotate`), the grace period passes and the proxy's housekeeping deletes the old
keys; `actas audit verify --config` still checks every checkpoint, and a checkpoint forged
under a deleted key's kid is still a bad signature."""
import json
import sqlite3
import subprocess
import time

from cryptography.hazmat.primitives.asymmetric import ec

from conftest import ACTAS, Proxy, Upstream, clean_env, complete_lines, wait_for
from test_audit_proof import audit, browse, rechain, resigned


def rotate(proxy):
    result = subprocess.run([str(ACTAS), "keys", "rotate", "--config", str(proxy.config_path)],
                            capture_output=True, text=True, env=clean_env())
    assert result.returncode == 0, result


def signing_keys(proxy):
    with sqlite3.connect(proxy.dir / "data" / "actas.db") as db:
        return db.execute("SELECT kid, retired_at FROM signing_keys ORDER BY created_at").fetchall()


def test_checkpoints_of_keys_deleted_by_two_rotations_still_verify_and_forgeries_still_fail(tmp_path):
    upstream = Upstream(tmp_path)
    (tmp_path / "proxy").mkdir()
    proxy = Proxy(tmp_path / "proxy", upstream.port, {
        "listen.instance_id": "edge-archive-1", "audit.checkpoint_every": 5, "audit.checkpoint_interval": "1h"})
    try:
        browse(proxy, 6, prefix="first")
        proxy.stop()
        for round_ in ("second", "third"):
            rotate(proxy)
            proxy.start()
            browse(proxy, 6, prefix=round_)
            proxy.stop()
        keys = signing_keys(proxy)
        assert len(keys) == 3 and [retired is None for _, retired in keys] == [False, False, True], keys
        log = proxy.dir / "logs" / "audit.jsonl"
        signed_by = {json.loads(line)["kid"] for line in complete_lines(log) if '"type":"checkpoint"' in line}
        assert signed_by == {kid for kid, _ in keys}, (signed_by, keys)

        # The grace period passes (retired three days ago); the proxy's housekeeping deletes them.
        with sqlite3.connect(proxy.dir / "data" / "actas.db") as db:
            db.execute("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NOT NULL", (time.time() - 3 * 86400,))
        proxy.start()
        wait_for(lambda: len(signing_keys(proxy)) == 1, timeout=120, what="housekeeping to delete the retired keys")
        proxy.stop()
    finally:
        proxy.stop()
        upstream.stop()

    lines = [line.encode() for line in complete_lines(log)]
    result = audit("verify", "--config", proxy.config_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"ok: {len(lines)} records, last seq {len(lines)}\n", ""), result

    # A checkpoint re-signed by an attacker under the first (deleted) key's kid does not pass.
    records = [json.loads(line) for line in lines]
    first = next(r for r in records if r["type"] == "checkpoint")
    forged = list(lines)
    forged[first["seq"] - 1] = resigned(forged[first["seq"] - 1], ec.generate_private_key(ec.SECP256R1()), first["kid"])
    path = tmp_path / "forged" / "audit.jsonl"
    path.parent.mkdir()
    path.write_bytes(b"".join(line + b"\n" for line in rechain(forged, first["seq"] - 1)))
    result = audit("verify", "--config", proxy.config_path, path)
    assert result.returncode == 1 and result.stdout.splitlines()[0] == f"checkpoint {first['seq']}: bad signature", result
