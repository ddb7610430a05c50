"""Sign-in throttling that a stranger cannot turn into a lock-out (issue 21 item 7).

An attacker hammers an account with wrong passwords; the owner, with the device cookie from an
earlier sign-in or from another network, still signs in. Client networks are simulated with
X-Forwarded-For from a trusted proxy (127.0.0.1/32)."""
import urllib.parse

from conftest import PASSWORD, import_users, login_form, request_bytes, set_cookies, wait_for

CONFIG = {
    "auth.public_paths": ["/static/*"],
    "auth.methods": ["password", "token"],
    "listen.trusted_proxies": ["127.0.0.1/32"],
}
ATTACKER = "198.51.100.7"
OWNER_SAME_NETWORK = "198.51.100.20"  # the attacker's /24: a shared office or carrier NAT
OWNER_ELSEWHERE = "203.0.113.5"


def sign_in(proxy, username, password, client, device=None):
    """The form POST as a browser at `client` sends it, with its device cookie if it has one."""
    token, login_cookie, _ = login_form(proxy)
    cookies = f"__Host-actas_login={login_cookie}" + (f"; __Host-actas_device={device}" if device else "")
    body = urllib.parse.urlencode({"csrf_token": token, "username": username, "password": password}).encode()
    return proxy.request(request_bytes("POST", "/.actas/login", [
        ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "text/html"), ("Origin", "https://localhost"),
        ("Cookie", cookies), ("X-Forwarded-For", client)], body))


def hammer(proxy, username, client, device=None, until_retry_after=8):
    """Wrong passwords until the answer is a 429 asking to wait at least `until_retry_after`
    seconds (the slow-down grows with every counted failure). Returns the statuses seen."""
    statuses = []

    def slowed_enough():
        response = sign_in(proxy, username, "wrong guess", client, device)
        statuses.append(response.status)
        assert response.status in (401, 429), response
        if response.status == 429:
            assert "__Host-actas_session" not in set_cookies(response)
            return int(response.header("retry-after")) >= until_retry_after
        return False
    wait_for(slowed_enough, timeout=60, what=f"Retry-After >= {until_retry_after}")
    return statuses


def device_cookie(response):
    value, attributes = set_cookies(response)["__Host-actas_device"]
    parts = [part.strip().lower() for part in attributes.split(";")]
    assert "secure" in parts and "httponly" in parts and "path=/" in parts
    assert not any(part.startswith("domain") for part in parts)
    return value


def test_the_owner_gets_in_while_an_attacker_hammers_the_account(make_proxy):
    proxy = make_proxy(CONFIG)
    import_users(proxy, [{"username": "alice", "role": "super_admin"}])
    first = sign_in(proxy, "alice", PASSWORD, OWNER_SAME_NETWORK)
    assert first.status == 303, first
    device = device_cookie(first)

    statuses = hammer(proxy, "alice", ATTACKER)
    # Five free failures, then only as many guesses as the growing waits allow.
    assert statuses[:5] == [401] * 5 and statuses.count(401) <= 9, statuses

    # The owner's browser, in the attacker's very network, has its own budget.
    owner = sign_in(proxy, "alice", PASSWORD, OWNER_SAME_NETWORK, device)
    assert owner.status == 303, owner
    # So does the owner at another network, without the cookie (a new laptop at home).
    assert sign_in(proxy, "alice", PASSWORD, OWNER_ELSEWHERE).status == 303
    # The attacker is still slowed down, even with the right password…
    assert sign_in(proxy, "alice", PASSWORD, ATTACKER).status == 429
    # …and so is any browser of that network without the owner's cookie.
    assert sign_in(proxy, "alice", PASSWORD, OWNER_SAME_NETWORK).status == 429


def test_a_device_cookie_helps_only_its_own_account(make_proxy):
    proxy = make_proxy(CONFIG)
    import_users(proxy, [{"username": "alice", "role": "super_admin"}, {"username": "mallory", "role": "employee"}])
    own = sign_in(proxy, "mallory", PASSWORD, ATTACKER)
    assert own.status == 303
    mallorys = device_cookie(own)
    statuses = hammer(proxy, "alice", ATTACKER, device=mallorys)
    assert statuses.count(401) <= 9, statuses
    forged = mallorys[:-2] + ("AA" if not mallorys.endswith("AA") else "BB")
    assert sign_in(proxy, "alice", PASSWORD, ATTACKER, forged).status == 429


def test_the_per_address_cap_stops_spraying_but_not_the_owner(make_proxy):
    proxy = make_proxy({**CONFIG, "auth.max_failed_logins_per_ip": 3})
    import_users(proxy, [{"username": "alice", "role": "super_admin"}])
    first = sign_in(proxy, "alice", PASSWORD, ATTACKER)
    device = device_cookie(first)
    for username in ("u1", "u2", "u3"):
        assert sign_in(proxy, username, "wrong", ATTACKER).status == 401
    sprayed = sign_in(proxy, "u4", "wrong", ATTACKER)
    assert sprayed.status == 429 and int(sprayed.header("retry-after")) > 60
    # Another address of the same network is not capped by this one's spraying.
    assert sign_in(proxy, "u5", "wrong", "198.51.100.8").status == 401
    # The owner behind the spraying address (a shared NAT) still gets in with the cookie.
    assert sign_in(proxy, "alice", PASSWORD, ATTACKER, device).status == 303


def test_unknown_and_known_accounts_are_throttled_alike(make_proxy):
    proxy = make_proxy(CONFIG)
    import_users(proxy, [{"username": "alice", "role": "super_admin"}])
    known = hammer(proxy, "alice", ATTACKER, until_retry_after=2)
    unknown = hammer(proxy, "nobody", "192.0.2.9", until_retry_after=2)
    assert known[:5] == unknown[:5] == [401] * 5
    assert set(known) == set(unknown) == {401, 429}


def test_the_device_cookie_never_reaches_the_app(make_proxy, upstream):
    proxy = make_proxy(CONFIG)
    import_users(proxy, [{"username": "alice", "role": "employee"}])
    signed_in = sign_in(proxy, "alice", PASSWORD, OWNER_ELSEWHERE)
    device = device_cookie(signed_in)
    session = set_cookies(signed_in)["__Host-actas_session"][0]
    response = proxy.request(request_bytes("GET", "/app", [
        ("Cookie", f"theme=dark; __Host-actas_device={device}; __Host-actas_session={session}")]))
    assert response.status == 200, response
    cookies = [value for name, value in upstream.requests()[-1]["headers"] if name.lower() == "cookie"]
    assert cookies == ["theme=dark"], cookies


def test_the_owner_from_another_network_gets_in_while_an_attacker_hammers(make_proxy):
    # The lock-out itself, without the device cookie: before, five failures from anywhere locked
    # the account for everyone for 15 minutes.
    proxy = make_proxy(CONFIG)
    import_users(proxy, [{"username": "alice", "role": "super_admin"}])
    hammer(proxy, "alice", ATTACKER)
    assert sign_in(proxy, "alice", PASSWORD, OWNER_ELSEWHERE).status == 303
    assert sign_in(proxy, "alice", PASSWORD, ATTACKER).status == 429
