"""SPEC §10.2: each instance keeps its own log, numbered by its own `seq`. When a load balancer
sends one impersonation's requests to two instances on one PostgreSQL, both logs have records
with the same seq; the session's records as the console shows them (the events API, the
session page's source) and its live stream (§10.5) must still carry every record of both."""
import copy
import json

from conftest import wait_for
from postgres_fixtures import pg_pair, pg_site_database, pg_site_template, postgres_server  # noqa: F401
from test_impersonation import Admin
from test_live_session import EventStream, live_path


def request_seqs(proxy, session):
    """seq → path of the session's request records in this instance's log."""
    seqs = {}
    for line in (proxy.dir / "logs" / "audit.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("type") == "request" and record.get("session_id") == session:
            seqs[record["seq"]] = record["path"]
    return seqs


def make_colliding_requests(first, second):
    """One impersonation started on the first instance, requests as the target through both
    (the same sign-in session, as behind a load balancer) until both logs hold a request
    record with the same seq. Returns the admin, the session and every request's path."""
    admin = Admin(first, "admin")
    response, body = admin.start("emp")
    assert response.status == 201, response
    session = body["id"]
    via = {first: admin, second: copy.copy(admin)}
    via[second].proxy = second
    paths = []
    for n in range(200):
        seqs = {proxy: request_seqs(proxy, session) for proxy in (first, second)}
        if len(paths) >= 6 and set(seqs[first]) & set(seqs[second]):
            break
        # The instance whose log is behind catches up, one record at a time, so its request
        # records meet every seq the other's reached.
        behind = min((first, second), key=lambda p: max(seqs[p], default=0))
        path = f"/two/{n}"
        assert via[behind].fetch(path).status == 200
        paths.append(path)
        wait_for(lambda: path in request_seqs(behind, session).values(), timeout=5,
                 what=f"the log record of {path}")
    else:
        raise AssertionError("the two logs never shared a seq")
    return admin, session, paths


def test_every_request_of_both_instances_is_in_the_sessions_records(pg_pair):
    first, second = pg_pair
    admin, session, paths = make_colliding_requests(first, second)
    emp = Admin(second, "emp")

    def listed(person):
        response, body = person.api("GET", f"/.actas/api/v1/sessions/{session}/events")
        assert response.status == 200, response
        return [event["path"] for event in body["events"] if event.get("type") == "request"]

    # The store copy lags the log by its gathering time: wait until every path is there.
    wait_for(lambda: set(listed(admin)) >= set(paths), timeout=10,
             what="every request of both instances in the session's records")
    for person in (admin, emp):  # the actor on one instance, the target on the other
        shown = listed(person)
        assert sorted(shown) == sorted(paths), "each request exactly once"
    # The session's page (the target's view of what was done as them) lists every request.
    page = emp.browse(f"/.actas/sessions/{session}")
    assert page.status == 200, page
    html = page.body.decode()
    for path in paths:
        assert html.count(f"{path}<") == 1, path


def test_the_live_stream_replays_both_instances_records_and_resumes_without_loss(pg_pair):
    first, second = pg_pair
    admin, session, paths = make_colliding_requests(first, second)
    emp = Admin(first, "emp")
    wait_for(lambda: len([e for e in admin.api("GET", f"/.actas/api/v1/sessions/{session}/events")[1]["events"]
                          if e.get("type") == "request"]) == len(paths),
             timeout=10, what="the store copy of every request")
    # From the start (an empty page's `?after=`): every record of both instances, once, with
    # an id that is unique across instances.
    stream = EventStream(first, emp, path=live_path(session) + "?after=")
    try:
        events = [stream.next_record() for _ in paths]
    finally:
        stream.close()
    got = [json.loads(event["data"][0])["path"] for event in events]
    assert sorted(got) == sorted(paths)
    ids = [event["id"] for event in events]
    assert len(set(ids)) == len(ids)
    # Resume on the other instance after the fourth record: exactly the rest, then new ones.
    cut = 4
    again = EventStream(second, Admin(second, "emp"), last_event_id=ids[cut - 1], path=live_path(session))
    try:
        assert admin.fetch("/two/after-resume").status == 200
        rest = [json.loads(again.next_record()["data"][0])["path"] for _ in range(len(paths) - cut + 1)]
    finally:
        again.close()
    assert sorted(rest) == sorted(got[cut:] + ["/two/after-resume"])
