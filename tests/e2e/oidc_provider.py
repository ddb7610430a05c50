"""A small, real OpenID Connect provider for the e2e tests: HTTPS, discovery, JWKS, authorize
(a sign-in page with one button), token (client_secret_basic, PKCE S256, one-use codes),
end_session, and control endpoints under /_control/ through which a test makes the next ID
token hostile (wrong iss/aud/azp, expired, alg none, HS256 with the public key, an unknown
kid, a rotated key) or mints a back-channel logout token.

Run: python oidc_provider.py --port P --cert C --key K --client-id ID --client-secret S
Prints "ready" once it listens."""
import argparse
import base64
import hashlib
import hmac
import html
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Keys:
    def __init__(self):
        self.keys = {}  # kid -> (alg, private key)
        self.published = []
        self.current = self.add("rsa-1", "RS256")
        self.add("ec-1", "ES256")

    def add(self, kid, alg, publish=True):
        key = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = (alg, key)
        if publish:
            self.published.append(kid)
        return kid

    def jwk(self, kid):
        alg, key = self.keys[kid]
        numbers = key.public_key().public_numbers()
        if alg == "ES256":
            return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": alg,
                    "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "kid": kid, "use": "sig", "n": b64url(n), "e": b64url(numbers.e.to_bytes(3, "big"))}

    def jwks(self):
        return {"keys": [self.jwk(kid) for kid in self.published]}

    def public_pem(self, kid):
        return self.keys[kid][1].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, claims, sign="default", kid=None, header=None):
        header = dict(header or {})
        if sign == "none":
            head = {"alg": "none", "typ": "JWT", **header}
            return b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode()) + "."
        if sign == "hs256_public_key":
            # The classic confusion: HMAC keyed with the provider's public RSA key.
            head = {"alg": "HS256", "typ": "JWT", "kid": self.current, **header}
            signing_input = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
            mac = hmac.new(self.public_pem(self.current), signing_input.encode(), hashlib.sha256).digest()
            return signing_input + "." + b64url(mac)
        if sign == "unknown_kid":
            if "ghost" not in self.keys:
                self.add("ghost", "RS256", publish=False)
            kid = "ghost"
        kid = kid or self.current
        alg, key = self.keys[kid]
        if sign == "ps256":
            alg = "PS256"
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **header})


class Provider:
    def __init__(self, issuer, client_id, client_secret):
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.keys = Keys()
        self.lock = threading.Lock()
        self.pending = {}  # request id -> authorize params
        self.codes = {}  # code -> grant
        self.user = {"sub": "sub-alice", "preferred_username": "alice", "email": "alice@example.com",
                     "email_verified": True, "name": "Alice Liddell", "groups": ["staff"]}
        self.next_token = {}
        self.jwks_down = False
        self.stats = {"jwks": 0, "token": 0, "discovery": 0, "end_session": []}

    def discovery(self):
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "end_session_endpoint": self.issuer + "/end_session",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    def id_token(self, grant):
        with self.lock:
            spec = self.next_token
            self.next_token = {}
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, "nonce": grant["nonce"],
                  "sid": grant["sid"], **grant["user"]}
        claims.update(spec.get("claims", {}))
        for name in spec.get("remove", []):
            claims.pop(name, None)
        if spec.get("rotate"):
            kid = self.keys.add(f"rsa-{len(self.keys.keys) + 1}", "RS256")
            self.keys.current = kid
        return self.keys.sign(claims, spec.get("sign", "default"), kid=spec.get("kid"))


def make_handler(provider):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status, body=b"", content_type="application/json", headers=()):
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def form(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                return json.loads(raw or "{}")
            return dict(urllib.parse.parse_qsl(raw))

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/.well-known/openid-configuration":
                provider.stats["discovery"] += 1
                return self.send(200, provider.discovery())
            if url.path == "/jwks":
                provider.stats["jwks"] += 1
                if provider.jwks_down:
                    return self.send(503, {"error": "temporarily_unavailable"})
                return self.send(200, provider.keys.jwks())
            if url.path == "/authorize":
                problems = []
                if query.get("client_id") != provider.client_id:
                    problems.append("unknown client_id")
                if query.get("response_type") != "code":
                    problems.append("response_type must be code")
                if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                    problems.append("PKCE S256 required")
                for name in ("state", "nonce", "redirect_uri", "scope"):
                    if not query.get(name):
                        problems.append(f"{name} missing")
                if "openid" not in query.get("scope", "").split():
                    problems.append("scope lacks openid")
                if problems:
                    return self.send(400, {"error": "invalid_request", "problems": problems})
                request_id = secrets.token_urlsafe(16)
                with provider.lock:
                    provider.pending[request_id] = query
                user = html.escape(provider.user.get("preferred_username", "?"))
                page = (f"<!doctype html><html><head><title>Test IdP</title></head><body><h1>Test identity provider</h1>"
                        f"<form method='post' action='/authorize/approve'><input type='hidden' name='request' value='{request_id}'>"
                        f"<button id='approve' type='submit'>Sign in as {user}</button></form></body></html>")
                return self.send(200, page, "text/html; charset=utf-8")
            if url.path == "/end_session":
                provider.stats["end_session"].append(query)
                return self.send(200, "<!doctype html><title>Signed out</title><h1>Signed out of the test IdP</h1>", "text/html")
            if url.path == "/_control/stats":
                return self.send(200, provider.stats)
            return self.send(404, {"error": "not_found"})

        def do_POST(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/authorize/approve":
                fields = self.form()
                with provider.lock:
                    query = provider.pending.pop(fields.get("request", ""), None)
                    if query is None:
                        return self.send(400, {"error": "unknown request"})
                    code = secrets.token_urlsafe(24)
                    provider.codes[code] = {"query": query, "user": dict(provider.user), "used": False,
                                            "nonce": query["nonce"], "sid": "sid-" + secrets.token_hex(6)}
                location = query["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": query["state"]})
                return self.send(302, "", "text/plain", headers=[("Location", location)])
            if url.path == "/token":
                provider.stats["token"] += 1
                expected = "Basic " + base64.b64encode(
                    f"{urllib.parse.quote_plus(provider.client_id)}:{urllib.parse.quote_plus(provider.client_secret)}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self.send(401, {"error": "invalid_client"})
                fields = self.form()
                with provider.lock:
                    grant = provider.codes.get(fields.get("code", ""))
                    if grant is None or grant["used"]:
                        return self.send(400, {"error": "invalid_grant"})
                    grant["used"] = True
                if fields.get("grant_type") != "authorization_code" or fields.get("redirect_uri") != grant["query"]["redirect_uri"]:
                    return self.send(400, {"error": "invalid_grant", "error_description": "redirect_uri"})
                verifier = fields.get("code_verifier", "")
                if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["query"]["code_challenge"]:
                    return self.send(400, {"error": "invalid_grant", "error_description": "PKCE"})
                return self.send(200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300,
                                       "id_token": provider.id_token(grant)})
            if url.path == "/_control/user":
                provider.user = self.form()
                return self.send(200, {})
            if url.path == "/_control/next_token":
                provider.next_token = self.form()
                return self.send(200, {})
            if url.path == "/_control/jwks_down":
                provider.jwks_down = bool(self.form().get("down"))
                return self.send(200, {})
            if url.path == "/_control/mint":
                spec = self.form()
                token = provider.keys.sign(spec.get("claims", {}), spec.get("sign", "default"), header=spec.get("header"))
                return self.send(200, {"token": token})
            return self.send(404, {"error": "not_found"})

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-id", default="actas")
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--host", default="localhost")
    args = parser.parse_args()
    issuer = f"https://{args.host}:{args.port}"
    provider = Provider(issuer, args.client_id, args.client_secret)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(provider))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
