"""Redaction gaps found by planting secrets (issue 21 item 8, SPEC §8): JSON inside JSON
strings and form values, RFC 2231 multipart names, key/value pair arrays, well-known token
formats in ordinary fields, and fields with an empty name. Every planted secret is looked for
in the log file, the process's stdout/stderr and the SQLite store file."""
import json
import sqlite3
import urllib.parse

from conftest import request_bytes
from test_audit_log import acting, verify_chain  # noqa: F401 (fixture)

# Realistic shapes (lengths as the issuers make them); each carries a unique marker.
GITHUB = {p: f"{p}_{m}{'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'[:36 - len(m)]}" for p, m in
          [("ghp", "PLNTghp"), ("gho", "PLNTgho"), ("ghu", "PLNTghu"), ("ghs", "PLNTghs"), ("ghr", "PLNTghr")]}
GITHUB_PAT = "github_pat_11PLNTPAT0abcdefghijkl_" + "m" * 59
AWS_KEYS = ["AKIAPLNTAKIA7EXAMPL", "ASIAPLNTASIA7EXAMPL"]
AWS_KEYS = [k + "E" * (20 - len(k)) for k in AWS_KEYS]
SLACK = [f"xox{c}-1234567890-PLNTslack{c}-abcdefghijklmnop" for c in "bpars"]
STRIPE = ["sk_live_PLNTskl51H4bcdefghijklmnopqrst", "sk_test_PLNTskt51H4bcdefghijklmnopqrst",
          "rk_live_PLNTrkl51H4bcdefghijklmnopqrst"]
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAPLNTpemBODYline1\nPLNTpemBODYline2abcdefgh==\n"
       "-----END RSA PRIVATE KEY-----")
PEM_MARKERS = ["PLNTpemBODYline1", "PLNTpemBODYline2"]


def test_planted_secrets_of_every_shape_stay_out_of_log_stdout_stderr_and_store(acting):  # noqa: F811
    proxy, upstream, admin, session = acting
    cookie = ("Cookie", f"__Host-actas_session={admin.cookie}")
    planted = []

    def secret(marker):
        planted.append(marker)
        return marker

    def send(method, path, headers=(), body=b""):
        response = proxy.request(request_bytes(method, path, [cookie, *headers], body))
        assert response.status < 500, (path, response)

    form_type = ("Content-Type", "application/x-www-form-urlencoded")
    json_type = ("Content-Type", "application/json")

    # (a) JSON inside a JSON string: GraphQL variables, a webhook payload, twice encoded, nested.
    graphql = {"query": "mutation Login($password: String!) { login(password: $password) }",
               "variables": json.dumps({"username": "VISIBLEgql", "password": secret("PLNTgqlvar01"),
                                        "input": {"apiKey": secret("PLNTgqlvar02")}})}
    send("POST", "/graphql", [json_type], json.dumps(graphql).encode())
    inner = json.dumps({"event": "VISIBLEhook", "data": {"client_secret": secret("PLNTwebhook03")}})
    send("POST", "/hook", [json_type], json.dumps({"payload": inner, "twice": json.dumps(json.dumps(
        {"token": secret("PLNTtwice04")})), "list": json.dumps([{"password": secret("PLNTlist05")}])}).encode())
    # ... in a form field (Slack/GitHub webhooks post `payload=<json>`) and in GraphQL GET.
    send("POST", "/formhook", [form_type], urllib.parse.urlencode(
        {"payload": json.dumps({"user": "VISIBLEform", "token": secret("PLNTformjson06")})}).encode())
    send("GET", "/graphql-get?" + urllib.parse.urlencode(
        {"query": "{ me }", "variables": json.dumps({"password": secret("PLNTgetvars07")})}))
    # ... and a malformed, JSON-looking string (single quotes) still naming a secret.
    send("POST", "/pyrepr", [json_type], json.dumps({"payload": "{'password': '" + secret("PLNTrepr08") + "'"}).encode())

    # (b) Multipart names in RFC 2231 / RFC 5987 extended form, and continuations.
    boundary = "PLNTb0undary"
    parts = [
        ("name*=UTF-8''password", secret("PLNTmpext09")),
        ("name*=utf-8'en'pass%77ord", secret("PLNTmpext10")),
        ('name="visible"; name*=UTF-8\'\'api%5Fkey', secret("PLNTmpext11")),
        ("name*0=pass; name*1=word", secret("PLNTmpcont12")),
        ("name*0*=UTF-8''sec; name*1*=ret", secret("PLNTmpcont13")),
        ('name="note"', "VISIBLEmultipart"),
        ('name=""', secret("PLNTmpempty14")),
        ("name*=UTF-8''", secret("PLNTmpempty15")),
    ]
    body = "".join(f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n{value}\r\n"
                   for disposition, value in parts) + f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n" \
        + secret("PLNTmpnoname16") + f"\r\n--{boundary}--\r\n"
    send("POST", "/multipart", [("Content-Type", f"multipart/form-data; boundary={boundary}")], body.encode())

    # (c) Key/value pair arrays: Postman, Kubernetes, AWS tags, CloudFormation, SSM, Salesforce, k/v.
    pairs = {
        "variables": [{"key": "password", "value": secret("PLNTkv17"), "type": "text"},
                      {"key": "host", "value": "VISIBLEkv"}],
        "env": [{"name": "DB_PASSWORD", "value": secret("PLNTkv18")}],
        "Tags": [{"Key": "ApiToken", "Value": secret("PLNTkv19")}],
        "Parameters": [{"ParameterKey": "DBSecret", "ParameterValue": secret("PLNTkv20")}],
        "ssm": {"Name": "/prod/db/password", "Value": secret("PLNTkv21"), "Type": "SecureString"},
        "records": [{"attributes": {"type": "Setting__c"}, "Name": "api_key", "Value__c": secret("PLNTkv22")}],
        "short": [{"k": "token", "v": secret("PLNTkv23")}],
    }
    send("POST", "/pairs", [json_type], json.dumps(pairs).encode())
    # ... the same shapes flattened into forms (AWS Query protocol, PHP-style arrays).
    send("POST", "/awsquery", [form_type], urllib.parse.urlencode([
        ("Action", "PutParameter"), ("Tags.member.1.Key", "secret"), ("Tags.member.1.Value", secret("PLNTkv24")),
        ("fields[0][name]", "password"), ("fields[0][value]", secret("PLNTkv25")),
        ("fields[1][name]", "city"), ("fields[1][value]", "VISIBLEcity")]).encode())

    # (d) Well-known token formats in fields whose names say nothing, and inside longer text.
    tokens = [*GITHUB.values(), GITHUB_PAT, *AWS_KEYS, *SLACK, *STRIPE]
    planted.extend(tokens)
    planted.extend(PEM_MARKERS)
    send("POST", "/tokens", [json_type], json.dumps(
        {"note": f"use {GITHUB['ghp']} please", "config": PEM, "list": tokens}).encode())
    send("GET", "/tokens-query?" + urllib.parse.urlencode([("v", t) for t in tokens] + [("pem", PEM)]))
    send("POST", "/tokens-form", [form_type], urllib.parse.urlencode(
        {"a": AWS_KEYS[0], "s": f"key={STRIPE[0]};", "g": GITHUB_PAT, "pem": PEM}).encode())
    send("GET", "/tokens-headers", [("X-Note", f"gh {GITHUB['ghs']} and {SLACK[0]}"), ("X-Aws", AWS_KEYS[1]),
                                     ("X-Stripe", STRIPE[2]), ("X-Meta", json.dumps({"password": secret("PLNThdrjson26")}))])

    # (e) Fields with an empty name, and names without a letter or digit.
    send("POST", "/empty-form", [form_type], f"={secret('PLNTempty27')}&%20={secret('PLNTempty28')}&x=VISIBLEx".encode())
    send("GET", f"/empty-query?={secret('PLNTempty29')}")
    send("POST", "/empty-json", [json_type], json.dumps({"": secret("PLNTempty30"), "ok": "VISIBLEjson"}).encode())

    admin.api("DELETE", "/.actas/api/v1/impersonation")
    proxy.stop()

    log = (proxy.dir / "logs" / "audit.jsonl").read_text()
    output = proxy.stderr_path.read_text()  # the proxy's stdout and stderr both go here
    store_file = (proxy.dir / "data" / "actas.db").read_bytes()
    db = sqlite3.connect(proxy.dir / "data" / "actas.db")
    dump = "\n".join(db.iterdump())
    wal = proxy.dir / "data" / "actas.db-wal"
    wal_bytes = wal.read_bytes() if wal.exists() else b""
    leaks = []
    for marker in planted:
        for name, text in (("log", log), ("stdout/stderr", output), ("store dump", dump)):
            if marker in text:
                leaks.append(f"{marker} in {name}")
        for name, raw in (("store file", store_file), ("store wal", wal_bytes)):
            if marker.encode() in raw:
                leaks.append(f"{marker} in {name}")
    assert not leaks, "\n".join(leaks)

    lines = log.splitlines()
    verify_chain(lines)
    by_path = {r["path"]: r for r in map(json.loads, lines) if r["type"] == "request"}
    # Redaction is not "log nothing": what is harmless stays readable.
    variables = json.loads(by_path["/graphql"]["request_body"]["variables"])
    assert variables == {"username": "VISIBLEgql", "password": "[REDACTED]", "input": {"apiKey": "[REDACTED]"}}
    assert json.loads(by_path["/hook"]["request_body"]["payload"])["event"] == "VISIBLEhook"
    assert json.loads(by_path["/formhook"]["request_body"]["payload"])["user"] == "VISIBLEform"
    multipart = by_path["/multipart"]["request_body"]
    assert multipart["note"] == "VISIBLEmultipart" and multipart["password"] == ["[REDACTED]"] * 3  # three spellings
    body = by_path["/pairs"]["request_body"]
    assert body["variables"][1] == {"key": "host", "value": "VISIBLEkv"}
    assert body["variables"][0] == {"key": "password", "value": "[REDACTED]", "type": "text"}
    assert body["ssm"]["Type"] == "SecureString"
    assert by_path["/awsquery"]["request_body"]["fields[1][value]"] == "VISIBLEcity"
    assert by_path["/tokens"]["request_body"]["note"] == "use [REDACTED] please"
    assert by_path["/empty-form"]["request_body"]["x"] == "VISIBLEx"
    assert by_path["/empty-json"]["request_body"] == {"": "[REDACTED]", "ok": "VISIBLEjson"}
