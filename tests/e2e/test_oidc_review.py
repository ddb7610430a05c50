"""OIDC sign-in across instances and under load (SPEC §10.2, §10.3): the one-use sign-in
flow and the seen logout tokens live in the shared store, so a replay on another instance is
refused; two first sign-ins of one new user at once both succeed; a verified email does not
hand an account already linked to another subject of the provider to a new subject."""
import json
import threading

import pytest

from conftest import import_users, run
from oidc_fixtures import Browser, log_events, now, oidc_proxy, provider  # noqa: F401 (fixtures)
from postgres_fixtures import pg_database, postgres_server  # noqa: F401 (fixtures)
from test_oidc import backchannel, logout_claims, refused


@pytest.fixture(params=["sqlite", "postgres"])
def shared_store(request):
    """None for SQLite, else a PostgreSQL database's URL. Set up before `oidc_proxy`, so the
    proxies stop before the database is dropped (teardown is in reverse)."""
    return request.getfixturevalue("pg_database") if request.param == "postgres" else None


@pytest.fixture
def pg_url(request, store):
    """The same for tests parametrized by `store` (listed before `oidc_proxy`)."""
    return request.getfixturevalue("pg_database") if store == "postgres" else None


@pytest.fixture
def two_instances(shared_store, oidc_proxy):
    """Two `actas serve` sharing one store: one SQLite file, or one PostgreSQL database."""
    if shared_store:
        url = shared_store
        first = oidc_proxy(**{"store.url": url})
        return first, oidc_proxy(**{"store.url": url})
    first = oidc_proxy()
    return first, oidc_proxy(**{"store.url": f"sqlite:{first.dir / 'data' / 'actas.db'}"})


def on(proxy, url):
    """The same callback URL, sent to another instance."""
    return url.replace(f"localhost:{url.split('localhost:')[1].split('/')[0]}", f"localhost:{proxy.https_port}", 1)


def test_a_callback_replayed_on_another_instance_is_refused(two_instances, provider):
    first, second = two_instances
    browser = Browser(first, provider)
    start = browser.start()
    flow_cookie = browser.cookies[first.https_port]["__Host-actas_oidc"]
    callback = browser.authorize(start)
    assert browser.request("GET", callback).status == 303
    tokens_before = provider.stats()
    # An attacker with the cookie, state and code, on the other instance.
    attacker = Browser(second, provider)
    attacker.cookies[second.https_port] = {"__Host-actas_oidc": flow_cookie}
    refused(attacker.request("GET", on(second, callback)), "oidc_state")
    # Refused before the code went anywhere.
    assert provider.stats() == tokens_before
    records = log_events(second, "login_failed")
    assert [r["reason"] for r in records] == ["oidc_state"]


def test_a_logout_token_replayed_on_another_instance_is_400_and_ends_nothing(two_instances, provider):
    first, second = two_instances
    signed_in = Browser(first, provider)
    assert signed_in.sign_in().status == 303
    token = provider.mint(logout_claims(provider, sub="sub-alice"))
    assert backchannel(first, Browser(first, provider), token).status == 200
    assert signed_in.me().status == 401
    again = Browser(second, provider)
    assert again.sign_in().status == 303
    refused(backchannel(second, Browser(second, provider), token), "invalid_logout_token", 400)
    assert again.me().status == 200


def callbacks_at_once(browsers, callbacks):
    """Every callback sent at the same moment (a barrier releases the threads together)."""
    barrier = threading.Barrier(len(browsers))
    replies = [None] * len(browsers)

    def go(index):
        barrier.wait()
        replies[index] = browsers[index].request("GET", callbacks[index])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_first_sign_ins_of_one_new_user_at_once_all_succeed(store, pg_url, oidc_proxy, provider):
    url = pg_url
    proxy = oidc_proxy(**({"store.url": url} if url else {}))
    for round_ in range(4):
        username = f"newcomer{round_}"
        provider.set_user(sub=f"sub-new-{round_}", preferred_username=username, email=f"{username}@example.com",
                          email_verified=True, groups=["staff"])
        browsers = [Browser(proxy, provider) for _ in range(6)]
        callbacks = [b.authorize(b.start()) for b in browsers]
        replies = callbacks_at_once(browsers, callbacks)
        assert [r.status for r in replies] == [303] * len(browsers), replies
        ids = {b.me().json()["user"]["id"] for b in browsers}
        assert len(ids) == 1, ids
    users = json.loads(run(["users", "list", "--json", "--config", str(proxy.config_path)]).stdout)
    assert sorted(u["username"] for u in users) == [f"newcomer{i}" for i in range(4)]


def test_a_verified_email_does_not_take_over_an_account_linked_to_another_subject(oidc_proxy, provider):
    proxy = oidc_proxy()
    import_users(proxy, [{"username": "alice", "email": "alice@example.com", "role": "manager"}])
    # Alice signs in through the provider once: her account is linked to sub-alice.
    owner = Browser(proxy, provider)
    assert owner.sign_in().status == 303
    alice_id = owner.me().json()["user"]["id"]
    # Another subject of the same provider with alice's email, verified (e.g. a self-service
    # account whose email the provider verified, or a reused address).
    provider.set_user(sub="sub-mallory", preferred_username="mallory", email="alice@example.com", email_verified=True)
    refused(Browser(proxy, provider).sign_in(), "account_conflict", 403)
    assert log_events(proxy, "login_failed")[-1]["reason"] == "account_conflict"
    users = json.loads(run(["users", "list", "--json", "--config", str(proxy.config_path)]).stdout)
    assert [(u["id"], u["username"]) for u in users] == [(alice_id, "alice")]
    # Alice herself still signs in.
    provider.set_user(sub="sub-alice", preferred_username="alice", email="alice@example.com", email_verified=True)
    assert Browser(proxy, provider).sign_in().status == 303
