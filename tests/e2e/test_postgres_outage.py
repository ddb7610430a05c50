"""SPEC §9, §10.2: while PostgreSQL is unreachable everything that needs it fails closed with
`503 store_unavailable` (JSON, or a page for browsers), signed-in browsing from memory goes on
for `store.grace` after the last contact and is refused after it, `/readyz` answers 503, and
the instance recovers by itself when the database is back. Stops and starts the test cluster
(ACTAS_TEST_POSTGRES_DIR)."""
import json
import time

import pytest

from conftest import admin_get, login, post_login, request_bytes, session_header, wait_for
from postgres_fixtures import POSTGRES_DIR, cluster, pg_config, pg_database, postgres_server  # noqa: F401
from test_changes_acknowledged import forwarded_as
from test_impersonation import Admin, setup_site

pytestmark = pytest.mark.skipif(not POSTGRES_DIR, reason="needs ACTAS_TEST_POSTGRES_DIR to stop and start the server")


def unavailable(response):
    return response.status == 503 and b"store_unavailable" in response.body


@pytest.fixture
def outage_sites(pg_database, make_proxy):
    """One instance with a long grace (browsing goes on), one with the shortest (it stops)."""
    patient = make_proxy(pg_config(pg_database, **{"store.grace": "1h"}))
    setup_site(patient)
    strict = make_proxy(pg_config(pg_database, **{"store.grace": "1s"}))
    return patient, strict


def test_store_outage_fails_closed_then_recovers_without_a_restart(outage_sites):
    patient, strict = outage_sites
    reader = Admin(patient, "emp")
    impersonating = Admin(strict, "admin")
    assert impersonating.start("emp")[0].status == 201
    consenting = Admin(patient, "far")
    starter = Admin(patient, "admin2")
    assert reader.fetch("/before-outage").status == 200

    cluster("stop")
    try:
        wait_for(lambda: admin_get(patient.admin_port, "/readyz")[0] == 503, timeout=30, what="/readyz 503 while the store is down")
        # Needs the store: sign-in, impersonation start, consent changes, as JSON and as a page.
        page = post_login(patient, "nocon")  # a form post: the page, not JSON
        assert page.status == 503 and b"unavailable" in page.body, page
        start, _ = starter.start("far")
        assert unavailable(start), start
        consent, body = consenting.api("DELETE", "/.actas/api/v1/consent")
        assert unavailable(consent) and body["error"] == "store_unavailable", consent
        # Only memory: signed-in browsing goes on within the grace...
        response = reader.fetch("/during-outage")
        assert response.status == 200, response
        assert forwarded_as(patient, "/during-outage") == [["emp"]]
        # ...and past it, signed-in and impersonated requests are refused, never forwarded.
        wait_for(lambda: unavailable(impersonating.fetch("/past-grace")), timeout=30, what="503 past store.grace")
        page = impersonating.browse("/past-grace-page")  # a browser gets the page, not JSON
        assert page.status == 503 and b"unavailable" in page.body.lower(), page
        assert forwarded_as(strict, "/past-grace") == [] and forwarded_as(strict, "/past-grace-page") == []
    finally:
        cluster("start")

    for proxy in (patient, strict):
        wait_for(lambda: admin_get(proxy.admin_port, "/readyz")[0] == 200, timeout=60, what="/readyz 200 after the store came back")
    wait_for(lambda: impersonating.fetch("/after-outage").status == 200, timeout=30, what="requests forwarded again")
    assert forwarded_as(strict, "/after-outage") == [["emp"]]
    assert login(patient, "nocon")
    consent, _ = consenting.api("DELETE", "/.actas/api/v1/consent")
    assert consent.status in (200, 204), consent


def test_after_an_outage_of_over_a_minute_the_instance_is_back_within_seconds_of_the_database(pg_database, make_proxy):
    """postgres-nio's pool spaces its connection attempts ever further apart (100 ms × 1.25^n, up
    to a minute): after a minute down it may try again only 15 s after the database is back. The
    instance must not wait for that: ready, and signing people in, within seconds."""
    proxy = make_proxy(pg_config(pg_database))
    setup_site(proxy)
    cluster("stop")
    try:
        wait_for(lambda: admin_get(proxy.admin_port, "/readyz")[0] == 503, timeout=30, what="/readyz 503 while the store is down")
        time.sleep(70)  # the length of the outage is what is tested: the pool's attempts are ~15 s apart by now
    finally:
        cluster("start")
    back = time.monotonic()
    wait_for(lambda: admin_get(proxy.admin_port, "/readyz")[0] == 200, timeout=90, what="/readyz 200 after the store came back")
    took = time.monotonic() - back
    assert login(proxy, "emp")
    assert took < 5, f"/readyz answered 200 only {took:.1f} s after the database was back"
