"""TLS policy, the redirect and admin listeners, the CLI, reload and drain."""
import json
import signal
import socket
import ssl
import subprocess
import threading
import time
import sys
import urllib.request

import pytest

from conftest import ACTAS, admin_get, clean_env, complete_lines, get, read_response, run, wait_for


def test_tls_12_and_13_only_with_alpn_http11(proxy):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = proxy.context()
        ctx.minimum_version = ctx.maximum_version = version
        with socket.create_connection(("127.0.0.1", proxy.https_port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
                assert tls.selected_alpn_protocol() == "http/1.1"
    for old in ("-tls1", "-tls1_1"):
        result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{proxy.https_port}", old],
                                input="", capture_output=True, text=True, timeout=10)
        assert "Cipher is (NONE)" in result.stdout or result.returncode != 0


def test_weak_tls12_ciphers_are_refused(proxy):
    for cipher in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "DES-CBC3-SHA", "ECDHE-ECDSA-AES128-SHA256"):
        ctx = proxy.context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.set_ciphers(cipher)
        except ssl.SSLError:
            continue
        with socket.create_connection(("127.0.0.1", proxy.https_port)) as raw:
            with pytest.raises(ssl.SSLError):
                ctx.wrap_socket(raw, server_hostname="localhost")
    status, metrics = admin_get(proxy.admin_port, "/metrics")
    assert "actas_tls_handshake_failures_total" in metrics


def test_sslyze_mozilla_intermediate(proxy):
    result = subprocess.run([sys.executable, "-m", "sslyze", f"localhost:{proxy.https_port}", "--mozilla_config=intermediate"],
                            capture_output=True, text=True, timeout=300)
    assert "No module named sslyze" not in result.stderr, "sslyze is not installed (scripts/test installs it)"
    output = result.stdout
    assert "Checking results against Mozilla's \"intermediate\" configuration" in output, output[-2000:]
    verdict = output.split("Checking results against", 1)[1]
    # The only acceptable finding: a development CA is not in the public trust stores.
    findings = [line.strip() for line in verdict.splitlines() if line.strip().startswith("* ")]
    assert all(f.startswith("* certificate_path_validation:") for f in findings), findings


def test_redirect_listener_sends_308_to_https(proxy):
    with socket.create_connection(("127.0.0.1", proxy.http_port)) as sock:
        sock.sendall(b"POST /path?x=1 HTTP/1.1\r\nHost: app.example:8080\r\nContent-Length: 0\r\n\r\n")
        response = read_response(sock)
    assert response.status == 308
    assert response.header("location") == f"https://app.example:{proxy.https_port}/path?x=1"


def test_admin_endpoints(proxy):
    proxy.request(get("/"))
    assert admin_get(proxy.admin_port, "/healthz") == (200, "ok\n")
    assert admin_get(proxy.admin_port, "/readyz") == (200, "ready\n")
    status, metrics = admin_get(proxy.admin_port, "/metrics")
    assert status == 200
    for name in ("actas_requests_total{status_class=\"2xx\"} 1", "actas_requests_in_flight", "actas_request_duration_seconds_bucket",
                 "actas_upstream_connections", "actas_tls_handshake_failures_total"):
        assert name in metrics, name


def test_check_names_file_line_and_key(tmp_path):
    config = tmp_path / "broken.conf"
    config.write_text('[listen]\nhttps = "127.0.0.1:8443"\n\n[upstream]\nurl = "ftp://127.0.0.1:9000"\nresponse_timout = "5s"\n')
    result = run(["check", "--config", str(config)], check=False)
    assert result.returncode == 2
    # Every problem at once: the unknown key and the rule on a value's meaning.
    assert f"{config}:6: upstream.response_timout: unknown key" in result.stderr
    assert f"{config}:5: upstream.url: must be an http:// URL" in result.stderr
    serve = subprocess.run([str(ACTAS), "serve", "--config", str(config)], capture_output=True, text=True, env=clean_env(), timeout=30)
    assert serve.returncode == 2
    assert f"{config}:6: upstream.response_timout" in serve.stderr


def test_check_accepts_the_shipped_proxy_conf():
    from conftest import ROOT
    result = run(["check", "--config", str(ROOT / "proxy.conf")], check=False)
    assert result.returncode == 0, result.stderr


def test_help_lists_commands():
    result = run(["--help"])
    for command in ("serve", "check", "certs"):
        assert command in result.stdout


def test_dev_certs_created_on_first_start(make_proxy, tmp_path):
    proxy = make_proxy(start=False)
    for name in ("server.crt", "server.key", "dev-ca.crt", "dev-ca.key"):
        (proxy.dir / "certs" / name).unlink()
    proxy.write_config({"listen.dev_certs": True})
    proxy.start()
    assert (proxy.dir / "certs" / "server.key").stat().st_mode & 0o077 == 0
    assert "DEVELOPMENT certificate" in proxy.stderr_path.read_text()
    assert proxy.request(get("/")).status == 200


def test_sighup_reloads_without_dropping_connections(make_proxy, upstream):
    proxy = make_proxy()
    with proxy.connect() as sock:
        sock.sendall(get("/"))
        assert read_response(sock).header("strict-transport-security") == "max-age=31536000"
        proxy.write_config({"listen.hsts": "max-age=60"})
        proxy.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in proxy.stderr_path.read_text(), what="reload")
        # The open connection keeps working and sees the new settings on its next request.
        sock.sendall(get("/"))
        assert read_response(sock).header("strict-transport-security") == "max-age=60"

        # A broken config is reported and the running one kept.
        proxy.config_path.write_text(proxy.config_path.read_text() + "\n[limits]\nbogus = 1\n")
        proxy.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in proxy.stderr_path.read_text(), what="failed reload")
        sock.sendall(get("/"))
        assert read_response(sock).header("strict-transport-security") == "max-age=60"
    assert proxy.process.poll() is None


def test_sigterm_drains_in_flight_requests_and_exits_0(make_proxy, upstream):
    proxy = make_proxy()
    results = {}

    def slow():
        results["response"] = proxy.request(get("/slow?ms=1500"))

    thread = threading.Thread(target=slow)
    thread.start()
    wait_for(lambda: len(upstream.requests()) == 1, what="request in flight")
    proxy.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    status, _ = admin_get(proxy.admin_port, "/readyz")
    assert status == 503
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.https_port), timeout=2).close()
    thread.join(timeout=10)
    assert results["response"].status == 200
    assert results["response"].header("connection") == "close"
    assert proxy.process.wait(timeout=15) == 0
    # Held on its event loop for a few milliseconds, the drained request's line is still written.
    lines = complete_lines(proxy.dir / "logs" / "audit.jsonl")
    assert any(json.loads(line).get("path") == "/slow" for line in lines)
