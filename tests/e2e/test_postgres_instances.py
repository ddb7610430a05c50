"""SPEC §9, §10.1, §10.2: several `actas serve` on one PostgreSQL database behave as one. A
change made through any of them (console, API or CLI) is enforced by the others before the
call returns; the LISTEN connection comes back after it is killed or the server restarts, and
nothing committed meanwhile is missed; instances starting at once migrate an empty database
exactly once. Needs ACTAS_TEST_POSTGRES_URL (scripts/test starts a server and sets it)."""
import json
import subprocess
import threading
import time

import pytest

from conftest import ACTAS, admin_get, clean_env, read_response, request_bytes, session_header, wait_for
from postgres_fixtures import (POSTGRES_DIR, cluster, listeners, make_pair, pg_config, pg_database, pg_pair,  # noqa: F401
                               pg_site_database, pg_site_template, postgres_server, psql)
from test_changes_acknowledged import cli, forwarded_as, with_token
from test_changes_acknowledged import test_console_changes_reach_the_other_instance_before_the_call_returns as console_changes
from test_changes_acknowledged import test_consent_grant_lets_the_other_instance_start_at_once as consent_grant
from test_changes_acknowledged import test_keys_rotate_is_published_by_every_instance_before_it_returns as keys_rotate
from test_changes_acknowledged import test_sign_out_on_one_instance_is_a_dead_session_on_the_other as sign_out
from test_changes_acknowledged import test_two_servers_on_one_store_both_enforce as suspend_and_token_revoke
from test_impersonation import Admin, setup_site

# The SQLite two-instance scenarios of test_changes_acknowledged, on PostgreSQL.
SHARED_SCENARIOS = {
    "suspend-and-token-revoke": suspend_and_token_revoke,
    "keys-rotate": keys_rotate,
    "sign-out": sign_out,
    "console-changes": console_changes,
    "consent-grant": consent_grant,
}


@pytest.mark.parametrize("scenario", SHARED_SCENARIOS)
def test_a_change_through_one_instance_is_enforced_by_the_other(pg_pair, scenario):
    SHARED_SCENARIOS[scenario](pg_pair, 0)


def test_operator_sessions_end_through_one_instance_ends_the_session_on_the_other(pg_pair):
    first, second = pg_pair
    admin = Admin(second, "admin")
    session = admin.start("emp")[1]["id"]
    assert admin.fetch("/pg-before-end").status == 200
    assert forwarded_as(second, "/pg-before-end") == [["emp"]]
    cli(first, "sessions", "end", session)
    response = admin.fetch("/pg-after-end")
    assert response.status == 403 and json.loads(response.body)["end_reason"] == "ended_by_operator", response
    assert forwarded_as(second, "/pg-after-end") == []


def test_consent_revoked_through_a_while_50_requests_are_in_flight_through_b(pg_site_database, make_proxy):
    """No request sent after the revoking call returned reaches the upstream as the target."""
    # 50 TLS handshakes at once on a shared 2-core machine can outlast the tests' 3 s header_timeout.
    first, second = make_pair(make_proxy, pg_site_database, site_ready=True, **{"limits.header_timeout": "30s"})
    admin = Admin(second, "admin")
    assert admin.start("emp")[0].status == 201
    revoked = threading.Event()
    outcomes = []
    late_paths = set()
    lock = threading.Lock()

    def hammer(k):
        # Keep-alive requests back to back (on a new connection when the proxy closes one),
        # three more once the revoking call has returned.
        after = 0
        i = 0
        while after < 3:
            with second.connect(timeout=30) as sock:
                while after < 3:
                    i += 1
                    path = f"/inflight/{k}/{i}"
                    sent_after_return = revoked.is_set()
                    sock.sendall(request_bytes("GET", path, [session_header(admin.cookie), ("Accept", "application/json")]))
                    if sent_after_return:
                        after += 1
                        with lock:
                            late_paths.add(path)
                    try:
                        response = read_response(sock)
                    except EOFError:
                        break
                    if i == 4:
                        started.release()
                    if response.status != 200:
                        with lock:
                            outcomes.append((response.status, json.loads(response.body).get("end_reason")))
                    if response.header("connection") == "close":
                        break

    started = threading.Semaphore(0)
    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(50)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert started.acquire(timeout=60), "every connection is forwarding as emp"
    response, _ = Admin(first, "emp").api("DELETE", "/.actas/api/v1/consent")
    returned = time.time()
    revoked.set()
    assert response.status in (200, 204), response
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    # The session ended for consent_revoked (told once, on whichever connection came first).
    assert outcomes and set(outcomes) <= {(403, "consent_revoked")}, outcomes
    # Every request sent after the call returned went upstream as the administrator, or not at all.
    assert len(late_paths) == 150
    records = [json.loads(line) for line in (second.dir.parent / f"upstream-{second.upstream_port}.jsonl").read_text().splitlines()]
    as_target = [r["target"] for r in records if r["target"] in late_paths
                 and ["emp"] == [v for n, v in r["headers"] if n.lower() == "x-forwarded-user"]]
    assert as_target == [], as_target[:3]


def change_unannounced(first, second, username):
    """Suspends `username` through the first instance's CLI with the second's instance row
    gone, so only the change feed (NOTIFY, or the poll) can tell the second."""
    psql(store_url(first), f"DELETE FROM instances WHERE admin_address = '127.0.0.1:{second.admin_port}'")
    cli(first, "users", "suspend", username)


def store_url(proxy):
    for line in proxy.config_path.read_text().splitlines():
        if line.startswith("url = \"postgres"):
            return line.split('"')[1]
    raise AssertionError("no postgres store.url")


def refused_start(proxy, username):
    admin = Admin(proxy, "admin")
    response, body = admin.start(username)
    return response.status == 403 and body["error"] == "target_status"


def test_a_killed_listener_connection_comes_back_and_misses_nothing(pg_pair):
    first, second = pg_pair
    url = store_url(first)
    wait_for(lambda: len(listeners(url, second)) == 1, what="the second instance's LISTEN connection")
    killed = listeners(url, second)[0]
    assert psql(url, f"SELECT pg_terminate_backend({killed})") == "t"
    # A change committed while the listener may be down is read from the changes table.
    change_unannounced(first, second, "emp")
    wait_for(lambda: refused_start(second, "emp"), what="the suspension to reach the second instance")
    wait_for(lambda: listeners(url, second) not in ([], [killed]), what="a new LISTEN connection")
    assert killed not in listeners(url, second)
    change_unannounced(first, second, "mgr")
    wait_for(lambda: refused_start(second, "mgr"), what="the next change, through the new listener")


@pytest.mark.skipif(not POSTGRES_DIR, reason="needs ACTAS_TEST_POSTGRES_DIR to restart the server")
def test_a_database_restart_the_feed_resumes_and_misses_nothing(pg_pair):
    first, second = pg_pair
    url = store_url(first)
    wait_for(lambda: len(listeners(url, second)) == 1, what="the second instance's LISTEN connection")
    before = listeners(url, second)
    cluster("stop")
    cluster("start")
    wait_for(lambda: admin_get(second.admin_port, "/readyz")[0] == 200, timeout=60, what="the second instance ready again")
    change_unannounced(first, second, "emp")
    wait_for(lambda: refused_start(second, "emp"), timeout=30, what="the suspension to reach the second instance")
    wait_for(lambda: listeners(url, second) not in ([], before), timeout=30, what="a new LISTEN connection")


def test_two_instances_starting_at_once_on_an_empty_database_migrate_it_once(pg_database, make_proxy):
    proxies = [make_proxy(pg_config(pg_database), start=False) for _ in range(2)]
    processes = [subprocess.Popen([str(ACTAS), "serve", "--config", str(p.config_path)],
                                  stdout=subprocess.DEVNULL, stderr=open(p.stderr_path, "a"), env=clean_env()) for p in proxies]
    for proxy, process in zip(proxies, processes):
        proxy.process = process
        proxy.stderr = open(proxy.stderr_path, "a")
    for proxy in proxies:
        wait_for(proxy.ready, what="actas /readyz")
    versions = psql(pg_database, "SELECT version FROM schema_migrations ORDER BY version").split()
    assert versions == sorted(set(versions), key=int) and versions[0] == "1", versions
    # Both serve from the one schema: a user imported through one signs in through the other.
    setup_site(proxies[0])
    assert Admin(proxies[1], "admin").start("emp")[0].status == 201
    # One signing key, shared.
    assert psql(pg_database, "SELECT count(*) FROM signing_keys WHERE retired_at IS NULL") == "1"
