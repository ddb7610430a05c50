"""SPEC §8: an impersonated request's record reaches the store's copy for the session's audit
page, and with two instances on one PostgreSQL database the person impersonated reads, through
the other instance, every request made as them — including many made at once (the copies are
gathered and written in batches). Needs ACTAS_TEST_POSTGRES_URL."""
from concurrent.futures import ThreadPoolExecutor

from conftest import wait_for
from postgres_fixtures import make_pair, pg_database, pg_pair, pg_site_database, pg_site_template, postgres_server  # noqa: F401
from test_impersonation import Admin


def test_every_impersonated_request_through_one_instance_is_on_the_session_page_of_the_other(pg_pair):
    first, second = pg_pair
    admin = Admin(first, "admin")
    session = admin.start("emp")[1]["id"]
    paths = [f"/pg-copied/{n}" for n in range(60)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda path: admin.fetch(path).status, paths))
    assert statuses == [200] * len(paths)

    emp = Admin(second, "emp")

    def copied():
        response, body = emp.api("GET", f"/.actas/api/v1/sessions/{session}/events")
        assert response.status == 200, response
        return {event.get("path") for event in body["events"]}

    wait_for(lambda: set(paths) <= copied(), timeout=30, what="every impersonated request in the other instance's session events")
    assert emp.get(f"/.actas/sessions/{session}", [("Accept", "text/html")]).status == 200
