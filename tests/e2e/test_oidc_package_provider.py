"""README "Sign in with your identity provider", "See it without an account anywhere": a local
provider from a package (oidc-provider-mock, PyPI) over HTTPS, in front of the demo app, and a
sign-in through its page. Its ID tokens carry no `kid` (its JWKS holds one key), which OpenID
Connect Core §10.1 allows."""
import json
import subprocess
import sys
import urllib.parse

import pytest

from conftest import free_port, wait_for
from oidc_fixtures import Browser, make_ca

pytest.importorskip("oidc_provider_mock")

PROVIDER = """
import sys, oidc_provider_mock as idp
user = idp.User(sub="dana", claims={"preferred_username": "dana", "name": "Dana Demo",
                                    "email": "dana@example.com", "email_verified": True})
idp.app(user_claims=[user]).run(port=int(sys.argv[1]), ssl_context=(sys.argv[2], sys.argv[3]))
"""


class PackageProvider:
    def __init__(self, directory):
        self.ca, cert, key = make_ca(directory)
        self.port = free_port()
        self.issuer = f"https://localhost:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-c", PROVIDER, str(self.port), str(cert), str(key)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import ssl
        self.context = ssl.create_default_context(cafile=str(self.ca))

        def answers():
            import http.client
            try:
                connection = http.client.HTTPSConnection("localhost", self.port, context=self.context, timeout=2)
                connection.request("GET", "/.well-known/openid-configuration")
                return connection.getresponse().status == 200
            except OSError:
                return False
        wait_for(answers, timeout=30, what="oidc-provider-mock")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def package_provider(tmp_path):
    directory = tmp_path / "mock-idp"
    directory.mkdir()
    provider = PackageProvider(directory)
    yield provider
    provider.stop()


def test_sign_in_through_the_packaged_local_provider(make_proxy, package_provider, tmp_path, upstream):
    secret = tmp_path / "oidc-client"
    secret.write_text("demo secret\n")
    proxy = make_proxy({
        "auth.methods": ["oidc", "password"], "auth.public_paths": [],
        "auth.oidc.issuer": package_provider.issuer, "auth.oidc.client_id": "actas",
        "auth.oidc.client_secret_file": str(secret), "auth.oidc.ca_file": str(package_provider.ca),
    })
    browser = Browser(proxy, package_provider)
    start = browser.start("/app/home")
    authorize = start.header("Location")
    assert authorize.startswith(package_provider.issuer + "/oauth2/authorize?")
    assert browser.request("GET", authorize).status == 200  # the provider's sign-in page
    # Its form posts back to the same URL with the subject chosen.
    approved = browser.request("POST", authorize, body=urllib.parse.urlencode({"sub": "dana", "action": "approve"}),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert approved.status == 302, approved
    callback = browser.request("GET", approved.header("Location"))
    assert callback.status == 303 and callback.header("Location") == "/app/home", callback
    me = browser.me().json()["user"]
    assert (me["username"], me["email"], me["role"]) == ("dana", "dana@example.com", "employee")
    assert browser.request("GET", browser.proxy_url("/app/home")).status == 200
    forwarded = [dict((k.lower(), v) for k, v in r["headers"]) for r in upstream.requests()]
    assert any(h.get("x-forwarded-user") == "dana" for h in forwarded)
