"""Fixtures for OIDC sign-in tests: the provider process (oidc_provider.py) with its own CA,
`actas serve` configured for it, and a small cookie-keeping HTTPS client that walks the code
flow the way a browser does (start → provider's page → approve → callback)."""
import datetime
import http.client
import json
import ssl
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import HERE, Proxy, free_port

CLIENT_ID = "actas-e2e"
CLIENT_SECRET = "s3cret with spaces & symbols"


def make_ca(directory: Path):
    """A CA and a server certificate for localhost/127.0.0.1; returns (ca, cert, key) paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test IdP CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "idp-ca.crt", directory / "idp.crt", directory / "idp.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


class Provider:
    """oidc_provider.py as a separate HTTPS process."""

    def __init__(self, directory: Path):
        self.ca, cert, key = make_ca(directory)
        self.port = free_port()
        self.issuer = f"https://localhost:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "oidc_provider.py"), "--port", str(self.port), "--cert", str(cert), "--key", str(key),
             "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"
        self.context = ssl.create_default_context(cafile=str(self.ca))

    def call(self, method, path, body=None):
        connection = http.client.HTTPSConnection("localhost", self.port, context=self.context, timeout=10)
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, json.loads(payload) if payload else None

    def set_user(self, **claims):
        assert self.call("POST", "/_control/user", claims)[0] == 200

    def next_token(self, **spec):
        assert self.call("POST", "/_control/next_token", spec)[0] == 200

    def mint(self, claims, sign="default", header=None):
        return self.call("POST", "/_control/mint", {"claims": claims, "sign": sign, "header": header or {}})[1]["token"]

    def stats(self):
        return self.call("GET", "/_control/stats")[1]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Reply {self.status} {self.headers} {self.body[:300]!r}>"


class Browser:
    """Keeps cookies per host:port, as a browser does (enough for __Host- cookies on one origin)."""

    def __init__(self, proxy: Proxy, provider: Provider, html=False):
        self.proxy, self.provider = proxy, provider
        self.cookies = {}  # (port) -> {name: value}
        self.html = html

    def request(self, method, url, body=None, headers=None):
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        context = self.proxy.context() if port == self.proxy.https_port else self.provider.context
        connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=30)
        jar = self.cookies.setdefault(port, {})
        all_headers = {"Host": f"localhost:{port}"}
        if self.html:
            all_headers["Accept"] = "text/html"
        if jar:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        all_headers.update(headers or {})
        path = parts.path + ("?" + parts.query if parts.query else "")
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        reply = Reply(response.status, response.getheaders(), response.read())
        connection.close()
        for value in reply.all("Set-Cookie"):
            name, _, rest = value.partition("=")
            cookie_value = rest.split(";", 1)[0]
            if "Max-Age=0" in value:
                jar.pop(name, None)
            else:
                jar[name] = cookie_value
        return reply

    def proxy_url(self, path):
        return f"https://localhost:{self.proxy.https_port}{path}"

    def start(self, rd="/app/home"):
        reply = self.request("GET", self.proxy_url("/.actas/oidc/start?rd=" + urllib.parse.quote(rd, safe="")))
        assert reply.status == 302, reply
        return reply

    def authorize(self, start_reply):
        """The provider's page, then its button: returns the callback URL the provider sends back."""
        page = self.request("GET", start_reply.header("Location"))
        assert page.status == 200, page
        request_id = page.body.decode().split("name='request' value='")[1].split("'")[0]
        approved = self.request("POST", f"https://localhost:{self.provider.port}/authorize/approve",
                                body=f"request={request_id}", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert approved.status == 302, approved
        return approved.header("Location")

    def sign_in(self, rd="/app/home"):
        callback = self.authorize(self.start(rd))
        return self.request("GET", callback)

    def me(self):
        return self.request("GET", self.proxy_url("/.actas/api/v1/me"))


def oidc_config(provider: Provider, directory: Path, methods=("oidc", "password"), **overrides):
    secret = directory / "oidc-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    values = {
        "auth.methods": list(methods),
        "auth.public_paths": [],
        "auth.oidc.issuer": provider.issuer,
        "auth.oidc.client_id": CLIENT_ID,
        "auth.oidc.client_secret_file": str(secret),
        "auth.oidc.ca_file": str(provider.ca),
        "auth.oidc.default_role": "employee",
    }
    values.update({f"auth.oidc.{k}" if "." not in k else k: v for k, v in overrides.items()})
    return values


def with_role_map(proxy: Proxy, mapping: dict):
    """TOML inline table `role_map = {…}` in [auth.oidc] (conftest writes only scalars and lists)."""
    table = "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in mapping.items()) + " }"
    text = proxy.config_path.read_text().replace("[auth.oidc]\n", f"[auth.oidc]\nrole_map = {table}\n", 1)
    proxy.config_path.write_text(text)


def log_events(proxy: Proxy, kind=None):
    path = proxy.dir / "logs" / "audit.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return [r for r in records if kind is None or r.get("type") == kind]


@pytest.fixture
def provider(tmp_path):
    directory = tmp_path / "idp"
    directory.mkdir()
    server = Provider(directory)
    yield server
    server.stop()


@pytest.fixture
def oidc_proxy(make_proxy, provider, tmp_path):
    """A proxy signing in through `provider`; `factory(role_map=…, **oidc keys)` for others."""
    def factory(role_map=None, methods=("oidc", "password"), **overrides):
        proxy = make_proxy(oidc_config(provider, tmp_path, methods=methods, **overrides), start=False)
        if role_map is not None:
            with_role_map(proxy, role_map)
        proxy.start()
        return proxy
    return factory


def now():
    return int(time.time())
