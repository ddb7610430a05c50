"""A webhook receiver for the notification tests (SPEC §10.5): records every POST (headers,
body, arrival time) as a JSON line, and can answer 500 to the first N requests or hang on
them (never answering) to exercise retries, or redirect every request elsewhere. Prints "ready" once listening."""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--fail-first", type=int, default=0, help="answer 500 to this many requests first")
    parser.add_argument("--hang-first", type=int, default=0, help="never answer this many requests first")
    parser.add_argument("--status", type=int, default=200, help="the answer after those")
    parser.add_argument("--redirect-to", default=None, help="answer 307 to every request, pointing here")
    args = parser.parse_args()
    lock = threading.Lock()
    seen = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                seen[0] += 1
                n = seen[0]
                with open(args.record, "a") as f:
                    f.write(json.dumps({"n": n, "at": time.time(), "path": self.path,
                                        "headers": [[k, v] for k, v in self.headers.items()],
                                        "body": body.decode("utf-8", "replace")}) + "\n")
            if args.redirect_to:
                self.send_response(307)
                self.send_header("Location", args.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if n <= args.hang_first:
                time.sleep(3600)
                return
            status = 500 if n <= args.hang_first + args.fail_first else args.status
            answer = b'{"ok":true}' if status < 300 else b'{"error":"planned"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
