#!/usr/bin/env python3
"""A deliberately plain HTTP/1.1 origin for end-to-end tests.

It records every request it receives (method, target, headers in order, body, connection
number) as one JSON line in the file given by --record, flushed at once, so a test can prove
what reached the upstream and what did not. It answers according to the path:

  /                       200 JSON {"path": …}
  /chunked                chunked body in 3 chunks with a trailer
  /until-close            200 without framing, body ends when the connection closes
  /slow?ms=N              waits N ms before answering
  /big?bytes=N            N bytes of body with Content-Length
  /close                  200 with Connection: close
  /status/NNN             that status, small body (none for 204/304)
  /hop                    response carrying hop-by-hop fields and a Connection-nominated one
  /early                  answers 413 before reading the request body, then closes
  /ws                     with Upgrade: websocket → 101 (with the right Sec-WebSocket-Accept), then echoes raw bytes back
  /ws-bad-accept          as /ws, but its Sec-WebSocket-Accept answers another key
  /ws-no-accept           as /ws, but without Sec-WebSocket-Accept
  /no-upgrade             with Upgrade → 200 (refuses to switch)
  /request-id             response carries its own X-Request-Id (the proxy must replace it)
  /hsts                   response carries its own Strict-Transport-Security
  /head                   Content-Length: 11 for HEAD and GET
  /continue               if Expect: 100-continue, sends 100 Continue before reading the body
  /set-cookie?name=&value=&path=   sets that cookie (and second=2)
  /page?kind=length|chunked|gzip|gzip-chunked|overlay|big   an HTML page (tricky <body> decoys)
  /crafted?kind=…          hostile response shapes for the response-side hardening tests (see crafted())
  /echo?times=N           the request body N times (default 1)

Each record carries `t`, the time it arrived (same clock as the tests).
"""
import argparse
import asyncio
import base64
import json
import os
import sys
import time
import urllib.parse

connection_counter = 0


class Recorder:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)

    def record(self, entry):
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())


async def read_head(reader):
    data = await reader.readuntil(b"\r\n\r\n")
    lines = data[:-4].split(b"\r\n")
    method, target, version = lines[0].decode("latin-1").split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers.append([name, value.strip()])
    return method, target, version, headers


def header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def read_body(reader, headers):
    te = header(headers, "transfer-encoding")
    if te and te.lower() == "chunked":
        body = b""
        trailers = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    line = await reader.readuntil(b"\r\n")
                    if line == b"\r\n":
                        return body, trailers
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers.append([name, value.strip()])
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length = header(headers, "content-length")
    if length:
        return await reader.readexactly(int(length)), []
    return b"", []


def response(status, body=b"", headers=(), reason="OK"):
    head = f"HTTP/1.1 {status} {reason}\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if status not in (204, 304) and not any(k.lower() == "content-length" for k, _ in headers):
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def csrf_app(method, path, headers):
    """Django's CSRF pattern (issue 15): `GET /csrf-app` sets a script-readable `csrftoken` and
    an `HttpOnly` `sessionid` when the request has none, and its page's script reads the token
    from `document.cookie` and POSTs it as `X-CSRFToken` to `/csrf-app/post`, which answers 200
    only when header and cookie agree (403 otherwise, as Django does)."""
    import secrets
    cookies = {}
    for part in (header(headers, "cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        cookies.setdefault(name, value)
    user = header(headers, "x-forwarded-user") or ""
    if path == "/csrf-app/post":
        sent = header(headers, "x-csrftoken") or ""
        ok = method == "POST" and bool(sent) and sent == cookies.get("csrftoken")
        body = json.dumps({"ok": ok, "user": user, "header": sent, "cookie": cookies.get("csrftoken")}).encode()
        return response(200 if ok else 403, body, [("Content-Type", "application/json")], "OK" if ok else "Forbidden")
    if path == "/csrf-app/logout":  # as Django's logout deletes its session cookie: without HttpOnly
        return response(200, b"logged out\n", [("Set-Cookie", 'sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax')])
    set_cookies = []
    if "csrftoken" not in cookies:
        set_cookies.append(("Set-Cookie", f"csrftoken={secrets.token_hex(16)}; Max-Age=31449600; Path=/; SameSite=Lax"))
    if "sessionid" not in cookies:
        set_cookies.append(("Set-Cookie", f"sessionid={user}-{secrets.token_hex(8)}; HttpOnly; Path=/; SameSite=Lax"))
    page = ("<!doctype html><html><head><title>csrf app</title></head><body>"
            f"<p id=\"user\">{user}</p><p id=\"result\">pending</p><script>"
            "function cookie(n){var m=document.cookie.split('; ').find(function(c){return c.indexOf(n+'=')===0;});"
            "return m?m.slice(n.length+1):null;}"
            "window.csrfResult=fetch('/csrf-app/post',{method:'POST',headers:{'X-CSRFToken':cookie('csrftoken')||'',"
            "'Content-Type':'application/json'},body:'{}'}).then(function(r){document.getElementById('result').textContent=r.status;"
            "return r.status;});</script></body></html>").encode()
    return response(200, page, [("Content-Type", "text/html; charset=utf-8"), *set_cookies])


CRAFTED_PAGE = b"<!doctype html><html><head><title>crafted</title></head><body><p id=\"app-content\">target data</p></body></html>"


def crafted(kind, query, own_port):
    """Hostile or unusual response shapes (engineer H6's tests): a list of byte strings to write
    in order (the first carries the head). `own_port` is this upstream's port, for Location."""
    import gzip as gz
    import zlib
    page = CRAFTED_PAGE
    html = [("Content-Type", "text/html; charset=utf-8")]
    if kind == "cookies":  # cookies whose names the proxy owns, a nameless one, bad names, and two fine ones
        cookies = ["__Host-actas_session=upstream-fixed; Path=/; Secure; HttpOnly", "__host-ACTAS_Session=x; Path=/; Secure",
                   "__Host-actas_login=y; Path=/; Secure", "__Secure-actas_session=z; Secure", " \t__Host-actas_oidc =w; Path=/; Secure",
                   "actas_session=v", "__Host-actas_session", "bad name=1; Path=/", "semi\"quote=2; Path=/", "=nameless; Path=/",
                   "=__Host-actas_session=upstream-fixed; Path=/; Secure",
                   "keep=1; Path=/", "csrftoken=abc; Path=/"]
        return [response(200, b"cookies\n", [("Set-Cookie", c) for c in cookies])]
    if kind == "redirect":  # Location-like headers pointing at this upstream's own address
        to = query.get("to", f"http://127.0.0.1:{own_port}/next?a=1").replace("PORT", str(own_port))
        name = query.get("header", "Location")
        value = f"0; url={to}" if name == "Refresh" else to
        return [response(int(query.get("status", "302")), b"moved\n", [(name, value)])]
    if kind == "bomb":  # an HTML page compressed about 1000:1 (N MB of spaces), chunked
        squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"]
        block = b" " * (1 << 20)
        opening = b"<!doctype html><html><head><title>" if query.get("where") == "head" else b"<!doctype html><html><head><title>bomb</title></head><body><p>"
        data = squeeze.compress(opening)
        for _ in range(int(query.get("mb", "128"))):
            data += squeeze.compress(block)
        data += squeeze.compress(b"</p></body></html>") + squeeze.flush()
        for i in range(0, len(data), 16384):
            part = data[i:i + 16384]
            parts.append(b"%x\r\n%s\r\n" % (len(part), part))
        parts.append(b"0\r\n\r\n")
        return parts
    if kind == "no-type":
        return [response(200, page)]
    if kind == "nosniff-other":
        return [response(200, b"{}", [("Content-Type", "application/json"), ("X-Content-Type-Options", "off")])]
    if kind == "deflate-zlib":
        return [response(200, zlib.compress(page), html + [("Content-Encoding", "deflate")])]
    if kind == "deflate-raw":
        raw = zlib.compressobj(6, zlib.DEFLATED, -15)
        return [response(200, raw.compress(page) + raw.flush(), html + [("Content-Encoding", "deflate")])]
    if kind == "br":  # not really brotli: the proxy cannot read it either way
        return [response(200, b"\x1b\x2f\x00\xf8" + page, html + [("Content-Encoding", "br")])]
    if kind == "gzip-gzip":
        return [response(200, gz.compress(gz.compress(page)), html + [("Content-Encoding", "gzip, gzip")])]
    if kind == "gzip-two-fields":
        return [response(200, gz.compress(gz.compress(page)), html + [("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")])]
    if kind == "xhtml":
        doc = (b'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head>'
               b'<body><p id="app-content">target data</p></body></html>')
        return [response(200, doc, [("Content-Type", query.get("type", "application/xhtml+xml"))])]
    if kind == "svg":
        doc = (b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="60"><text id="app-content" x="10" y="30">target data</text></svg>')
        return [response(200, doc, [("Content-Type", "image/svg+xml")])]
    if kind == "two-types":
        return [response(200, page, [("Content-Type", "text/plain"), ("Content-Type", "text/html")])]
    if kind == "utf16":
        body = "\ufeff".encode("utf-16-le") + page.decode().encode("utf-16-le")
        return [response(200, body, [("Content-Type", query.get("type", "text/html; charset=utf-16"))])]
    if kind == "frameset":
        doc = (b"<!doctype html><html><head><title>frames</title></head><frameset cols=\"100%\">"
               b"<frame src=\"/page?kind=length\"></frameset></html>")
        return [response(200, doc, html)]
    if kind == "partial":  # a 206 to a request that asked for no range
        return [response(206, page, html + [("Content-Range", f"bytes 0-{len(page) - 1}/{len(page)}")])]
    if kind == "same-type-twice":
        return [response(200, page, [("Content-Type", "text/html"), ("Content-Type", "text/html; charset=utf-8")])]
    if kind == "attachment":
        return [response(200, page, html + [("Content-Disposition", "attachment; filename=report.html")])]
    return [response(404, b"unknown kind\n")]


async def handle(reader, writer, recorder):
    global connection_counter
    connection_counter += 1
    conn = connection_counter
    try:
        while True:
            try:
                method, target, version, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            parsed = urllib.parse.urlsplit(target)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            path = parsed.path
            entry = {"conn": conn, "method": method, "target": target, "version": version, "headers": headers, "t": time.time()}

            if path == "/early":
                recorder.record({**entry, "body": None})
                writer.write(response(413, b"too big\n", [("Connection", "close")], "Payload Too Large"))
                await writer.drain()
                writer.close()
                return
            if path == "/continue" and (header(headers, "expect") or "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()

            body, trailers = await read_body(reader, headers)
            entry["body_b64"] = base64.b64encode(body).decode()
            entry["body_len"] = len(body)
            entry["trailers"] = trailers
            recorder.record(entry)

            if path in ("/ws", "/ws-bad-accept", "/ws-no-accept") and (header(headers, "upgrade") or "").lower() == "websocket":
                # RFC 6455 §4.2.2: the accept value proves the server read this handshake's key.
                import hashlib
                key = (header(headers, "sec-websocket-key") or "").encode()
                accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
                if path == "/ws-bad-accept":
                    accept = base64.b64encode(hashlib.sha1(b"another key").digest()).decode()
                accept_line = b"" if path == "/ws-no-accept" else f"Sec-WebSocket-Accept: {accept}\r\n".encode()
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + accept_line + b"\r\n")
                await writer.drain()
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
                writer.close()
                return
            if path == "/no-upgrade":
                writer.write(response(200, b"no switching here\n"))
            elif path == "/chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\nContent-Type: text/plain\r\n\r\n")
                for part in (b"first,", b"second,", b"third"):
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                    await writer.drain()
                    await asyncio.sleep(0.01)
                writer.write(b"0\r\nX-Checksum: 42\r\n\r\n")
            elif path == "/until-close":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
                await writer.drain()
                writer.close()
                return
            elif path == "/slow":
                await asyncio.sleep(int(query.get("ms", "1000")) / 1000)
                writer.write(response(200, b"slow\n"))
            elif path == "/big":
                n = int(query.get("bytes", "1048576"))
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nContent-Type: application/octet-stream\r\n\r\n".encode())
                block = b"x" * 65536
                sent = 0
                while sent < n:
                    chunk = block[: min(65536, n - sent)]
                    writer.write(chunk)
                    sent += len(chunk)
                    await writer.drain()
            elif path == "/close":
                writer.write(response(200, b"bye\n", [("Connection", "close")]))
                await writer.drain()
                writer.close()
                return
            elif path.startswith("/status/"):
                status = int(path.rsplit("/", 1)[1])
                writer.write(response(status, b"" if status in (204, 304) else b"status\n"))
            elif path == "/hop":
                writer.write(response(200, b"hop\n", [
                    ("Connection", "X-Secret-Hop, keep-alive"), ("Keep-Alive", "timeout=5"), ("X-Secret-Hop", "1"),
                    ("Proxy-Authenticate", "Basic"), ("Upgrade", "h2c"), ("X-Kept", "yes")]))
            elif path == "/page":
                kind = query.get("kind", "length")
                page = (b"<!doctype html><html><head><title>t</title><!-- <body> in a comment -->"
                        b"<script>var s = '<body>';</script></head><body class=\"app\"><p>hello page</p></body></html>")
                if kind == "overlay":
                    page = (b"<!doctype html><html><head><style>#cover{position:fixed;top:0;left:0;right:0;height:120px;"
                            b"z-index:2147483647;background:#c00} div{position:static!important;z-index:0!important}"
                            b" form{display:none} button{visibility:hidden} body{font-size:2px;margin-top:0}</style></head>"
                            b"<body><div id=\"cover\">app header with a huge z-index</div><p>content</p></body></html>")
                if kind == "big":
                    page = b"<!doctype html><html><head><title>big</title></head><body>" + (b"<p>" + b"x" * 1000 + b"</p>\n") * int(query.get("n", "50")) + b"</body></html>"
                if kind in ("gzip", "gzip-chunked") and "gzip" in (header(headers, "accept-encoding") or ""):
                    import gzip as gz
                    page_bytes = gz.compress(page)
                    if kind == "gzip":
                        writer.write(response(200, page_bytes, [("Content-Type", "text/html"), ("Content-Encoding", "gzip"), ("ETag", '"v1"')]))
                    else:
                        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
                        for i in range(0, len(page_bytes), 7):
                            part = page_bytes[i:i + 7]
                            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                        writer.write(b"0\r\n\r\n")
                elif kind == "chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n")
                    cut = page.index(b"<body") + 3  # split the tag across chunks: "<bo" | "dy class=..."
                    for part in (page[:cut], page[cut:]):
                        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                        await writer.drain()
                        await asyncio.sleep(0.01)
                    writer.write(b"0\r\n\r\n")
                else:
                    writer.write(response(200, b"" if method == "HEAD" else page,
                                          [("Content-Type", "text/html; charset=utf-8"), ("ETag", '"v1"'), ("Accept-Ranges", "bytes")]
                                          + ([("Content-Length", str(len(page)))] if method == "HEAD" else [])))
            elif path == "/crafted":
                for part in crafted(query.get("kind", ""), query, writer.get_extra_info("sockname")[1]):
                    writer.write(part)
                    await writer.drain()
            elif path == "/set-cookie":
                cookie = f"{query.get('name', 'app')}={query.get('value', '1')}; Path={query.get('path', '/')}; HttpOnly"
                writer.write(response(200, b"cookie set\n", [("Set-Cookie", cookie), ("Set-Cookie", "second=2; Path=/")]))
            elif path.startswith("/csrf-app"):
                writer.write(csrf_app(method, path, headers))
            elif path == "/echo":
                writer.write(response(200, body * int(query.get("times", "1")), [("Content-Type", "application/octet-stream")]))
            elif path == "/request-id":
                writer.write(response(200, b"id\n", [("X-Request-Id", "upstream-chosen")]))
            elif path == "/hsts":
                writer.write(response(200, b"hsts\n", [("Strict-Transport-Security", "max-age=1")]))
            elif path == "/head":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n" + (b"" if method == "HEAD" else b"hello world"))
            else:
                payload = json.dumps({"path": path, "method": method, "body_len": len(body)}).encode()
                writer.write(response(200, payload, [("Content-Type", "application/json")]))
            await writer.drain()
            if (header(headers, "connection") or "").lower() == "close":
                writer.close()
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    args = parser.parse_args()
    recorder = Recorder(args.record)
    server = await asyncio.start_server(lambda r, w: handle(r, w, recorder), "127.0.0.1", args.port, limit=1 << 20)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
