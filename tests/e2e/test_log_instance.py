"""SPEC §10.2: each instance's `instance` id is written in every log record, whatever the
record (requests plain and impersonated, refusals, sign-in and impersonation events,
checkpoints); the default id is the host name and the admin port."""
import json
import socket

from conftest import complete_lines, request_bytes, wait_for
from test_impersonation import Admin, config, setup_site


def records(proxy):
    return [json.loads(line) for line in complete_lines(proxy.dir / "logs" / "audit.jsonl")]


def exercise(proxy):
    """Some of every kind: a sign-in, an impersonation with requests, a refusal, its end."""
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    response, _ = admin.start("emp")
    assert response.status == 201
    assert admin.get("/app/page").status == 200
    assert proxy.request(request_bytes("GET", "/app/anonymous", [("Accept", "application/json")])).status == 401
    admin.api("DELETE", "/.actas/api/v1/impersonation")
    kinds = {"login", "impersonation_started", "request", "impersonation_ended"}
    wait_for(lambda: kinds <= {r["type"] for r in records(proxy)}, what="every kind of record in the log")


def test_every_record_names_the_configured_instance(make_proxy):
    proxy = make_proxy(config(**{"listen.instance_id": "eu-west-1a", "audit.checkpoint_every": 5}))
    exercise(proxy)
    wait_for(lambda: any(r["type"] == "checkpoint" for r in records(proxy)), what="a checkpoint")
    logged = records(proxy)
    assert {r["type"] for r in logged} >= {"login", "impersonation_started", "request", "impersonation_ended", "checkpoint"}
    assert [r for r in logged if r.get("instance") != "eu-west-1a"] == []
    # Each line names it once (a checkpoint too, where it is signed).
    lines = complete_lines(proxy.dir / "logs" / "audit.jsonl")
    assert all(line.count('"instance":') == 1 for line in lines)


def test_the_default_instance_is_the_host_name_and_admin_port(make_proxy):
    proxy = make_proxy(config())
    exercise(proxy)
    names = {r.get("instance") for r in records(proxy)}
    assert len(names) == 1, names
    # The host name as the system gives it (short or fully qualified, depending on the machine).
    assert names.pop() in {f"{host}:{proxy.admin_port}" for host in (socket.gethostname(), socket.getfqdn())}
