"""Signed checkpoints in the request log (SPEC §10.6), as an operator meets them: every
`audit.checkpoint_every` records, after `audit.checkpoint_interval` when records were written,
at rotation and at shutdown; each chained like any record, signed with the assertion key
(checked here with an independent ES256 implementation against the published JWKS), and the
newest kept in the store."""
import base64
import hashlib
import json
import sqlite3

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from conftest import complete_lines, request_bytes, wait_for

INSTANCE = "edge-test-1"


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwks(proxy):
    response = proxy.request(request_bytes("GET", "/.well-known/actas/jwks.json"))
    assert response.status == 200, response
    keys = {}
    for key in json.loads(response.body)["keys"]:
        x, y = (int.from_bytes(b64url(key[c]), "big") for c in ("x", "y"))
        keys[key["kid"]] = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    return keys


def signature_ok(record, keys):
    """ES256 over covers + "." + head + "." + instance; sig is R ‖ S, 64 bytes, base64url unpadded."""
    sig = record["sig"]
    assert "=" not in sig and "+" not in sig and "/" not in sig, sig
    raw = b64url(sig)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    message = f'{record["covers"]}.{record["head"]}.{record["instance"]}'.encode()
    try:
        keys[record["kid"]].verify(der, message, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def chain(lines, prev="0" * 64):
    """SPEC §8's chain over lines (of one or more files, in order); returns the records."""
    records = []
    for line in lines:
        body, marker, tail = line.rpartition(',"hash":"')
        assert marker and tail.endswith('"}'), line
        record = json.loads(line)
        assert record["prev"] == prev, line
        assert hashlib.sha256((prev + "\n" + body + "}").encode()).hexdigest() == record["hash"], line
        prev = record["hash"]
        records.append(record)
    return records


def check_checkpoints(records, keys):
    """Every checkpoint covers the record just before it, by seq and hash, and is signed."""
    by_seq = {r["seq"]: r for r in records}
    checkpoints = [r for r in records if r["type"] == "checkpoint"]
    for cp in checkpoints:
        assert cp["covers"] == cp["seq"] - 1, cp
        assert cp["head"] == by_seq[cp["covers"]]["hash"] == cp["prev"], cp
        assert cp["instance"] == INSTANCE
        assert cp["kid"] in keys, cp
        assert signature_ok(cp, keys), cp
        assert list(cp) == ["ts", "seq", "type", "covers", "head", "instance", "kid", "sig", "prev", "hash"]
    return checkpoints


def store_checkpoints(proxy):
    with sqlite3.connect(proxy.dir / "data" / "actas.db") as db:
        return db.execute("SELECT instance, seq, covers, head, kid, sig FROM checkpoints ORDER BY seq").fetchall()


def log_path(proxy):
    return proxy.dir / "logs" / "audit.jsonl"


def make(make_proxy, **audit):
    return make_proxy({"listen.instance_id": INSTANCE, "auth.public_paths": ["/*"],
                       **{f"audit.{k}": v for k, v in audit.items()}})


def browse(proxy, count, prefix="page"):
    for n in range(count):
        assert proxy.request(request_bytes("GET", f"/{prefix}/{n}")).status == 200


def test_every_n_records_a_signed_checkpoint_and_one_at_shutdown(make_proxy):
    proxy = make(make_proxy, checkpoint_every=5, checkpoint_interval="1h")
    keys = jwks(proxy)  # a request record too
    browse(proxy, 11)
    wait_for(lambda: sum('"type":"checkpoint"' in line for line in complete_lines(log_path(proxy))) >= 2,
             what="two checkpoints after ten records")
    proxy.stop()
    records = chain(complete_lines(log_path(proxy)))
    types = [r["type"] for r in records]
    # 12 requests: a checkpoint after each 5, and one at shutdown for the last 2.
    assert types == ["request"] * 5 + ["checkpoint"] + ["request"] * 5 + ["checkpoint"] + ["request"] * 2 + ["checkpoint"]
    checkpoints = check_checkpoints(records, keys)
    assert [cp["covers"] for cp in checkpoints] == [5, 11, 14]
    # The store holds them; the newest is the shutdown checkpoint, exactly as logged.
    stored = store_checkpoints(proxy)
    last = checkpoints[-1]
    assert stored[-1] == (INSTANCE, last["seq"], last["covers"], last["head"], last["kid"], last["sig"])
    assert [row[1] for row in stored] == [cp["seq"] for cp in checkpoints]


def test_interval_checkpoint_seals_records_when_traffic_stops(make_proxy):
    proxy = make(make_proxy, checkpoint_every=1000, checkpoint_interval="1s")
    keys = jwks(proxy)
    browse(proxy, 3)

    def sealed():
        records = [json.loads(line) for line in complete_lines(log_path(proxy))]
        return len(records) >= 5 and records[-1]["type"] == "checkpoint" and records[-1]["covers"] == 4
    wait_for(sealed, timeout=10, what="the interval checkpoint after four records")
    checkpoints = check_checkpoints(chain(complete_lines(log_path(proxy))), keys)
    assert [cp["covers"] for cp in checkpoints] == [4]
    wait_for(lambda: [row[1] for row in store_checkpoints(proxy)] == [5], what="the checkpoint in the store")
    # Nothing written since: the shutdown adds none.
    proxy.stop()
    records = chain(complete_lines(log_path(proxy)))
    assert [r["type"] for r in records].count("checkpoint") == 1


def test_every_rotated_file_ends_in_a_checkpoint_and_the_chain_spans_them(make_proxy):
    proxy = make(make_proxy, checkpoint_every=1000, checkpoint_interval="1h", max_file_size="2KB")
    keys = jwks(proxy)
    browse(proxy, 30)
    proxy.stop()
    directory = log_path(proxy).parent
    rotated = sorted(p for p in directory.iterdir() if p.name.startswith("audit.jsonl."))
    assert len(rotated) >= 4, [p.name for p in directory.iterdir()]
    files = rotated + [log_path(proxy)]
    lines = []
    for path in files:
        assert path.stat().st_size <= 2048, path
        file_lines = path.read_text().splitlines()
        assert json.loads(file_lines[-1])["type"] == "checkpoint", path
        lines += file_lines
    records = chain(lines)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert sum(r["type"] == "request" for r in records) == 31
    checkpoints = check_checkpoints(records, keys)
    assert len(checkpoints) == len(files)
    assert store_checkpoints(proxy)[-1][1] == checkpoints[-1]["seq"]


def test_a_restart_continues_the_chain_after_the_shutdown_checkpoint(make_proxy):
    proxy = make(make_proxy, checkpoint_every=1000, checkpoint_interval="1h")
    browse(proxy, 2)
    proxy.stop()
    proxy.start()
    keys = jwks(proxy)
    browse(proxy, 1, prefix="again")
    proxy.stop()
    records = chain(complete_lines(log_path(proxy)))
    assert [r["type"] for r in records] == ["request", "request", "checkpoint", "request", "request", "checkpoint"]
    check_checkpoints(records, keys)
    assert store_checkpoints(proxy)[-1][1] == 6


def test_checkpoint_settings_are_validated(make_proxy):
    from conftest import run
    proxy = make_proxy({"listen.instance_id": INSTANCE}, start=False)
    proxy.write_config({"listen.instance_id": INSTANCE, "audit.checkpoint_every": 0})
    result = run(["check", "--config", str(proxy.config_path)], check=False)
    assert result.returncode == 2 and "audit.checkpoint_every: must be between 1 and" in result.stderr, result.stderr
    proxy.write_config({"listen.instance_id": INSTANCE, "audit.checkpoint_interval": "500ms"})
    result = run(["check", "--config", str(proxy.config_path)], check=False)
    assert result.returncode == 2 and "audit.checkpoint_interval: duration must be at least 1s" in result.stderr, result.stderr
