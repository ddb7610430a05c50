"""Group commit as an administrator meets it (SPEC §8, issue 20): many impersonated requests in
flight at once, each answered only once its record is in the log file, and under `kill -9` at
random moments every answered impersonated request is in the log, whose chain still verifies
and continues after a restart."""
import json
import random
import signal
import threading

from conftest import complete_lines, read_response, request_bytes, run, session_header, wait_for
from test_impersonation import Admin, config, setup_site

CONNECTIONS = 24


def log_file(proxy):
    return proxy.dir / "logs" / "audit.jsonl"


class LogIndex:
    """The request ids in the log file, read incrementally (complete lines only)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.ids = set()
        self.lock = threading.Lock()

    def contains(self, request_id):
        with self.lock:
            if request_id in self.ids:
                return True
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                self.ids.add(json.loads(line).get("request_id"))
            self.offset += end
            return request_id in self.ids


def acting(make_proxy):
    proxy = make_proxy(config())
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    assert admin.start("emp")[0].status == 201
    return proxy, admin


def hammer(proxy, admin, stop, on_answer, per_connection=None):
    """CONNECTIONS keep-alive connections, each sending impersonated GETs back to back."""
    def worker(number):
        sent = 0
        try:
            with proxy.connect() as sock:
                while not stop.is_set() and (per_connection is None or sent < per_connection):
                    sock.sendall(request_bytes("GET", f"/durable/{number}/{sent}", [session_header(admin.cookie)]))
                    response = read_response(sock)
                    sent += 1
                    on_answer(response)
        except (OSError, EOFError):
            if per_connection is not None:
                raise  # only a kill may cut a connection
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    return threads


def test_each_impersonated_response_comes_after_its_record_is_in_the_file(make_proxy):
    proxy, admin = acting(make_proxy)
    index = LogIndex(log_file(proxy))
    answered, early = [], []
    lock = threading.Lock()

    def check(response):
        # Read the file the moment the response arrives: the record must already be there.
        request_id = response.header("x-request-id")
        present = response.status == 200 and index.contains(request_id)
        with lock:
            (answered if present else early).append((response.status, request_id))

    for thread in hammer(proxy, admin, threading.Event(), check, per_connection=25):
        thread.join()
    assert early == [], f"{len(early)} responses arrived before their record was in the log: {early[:5]}"
    assert len(answered) == CONNECTIONS * 25
    records = [json.loads(line) for line in complete_lines(log_file(proxy))]
    durable = [r for r in records if r.get("path", "").startswith("/durable/")]
    assert len(durable) == CONNECTIONS * 25
    assert all(r["impersonator"] == "admin" and r["user"] == "emp" for r in durable)


def test_kill_9_at_random_moments_keeps_every_answered_impersonated_request(make_proxy):
    proxy, admin = acting(make_proxy)
    rng = random.Random()
    for round_number in range(3):
        answered = []
        stop = threading.Event()

        def record(response):
            if response.status == 200:
                answered.append(response.header("x-request-id"))
        threads = hammer(proxy, admin, stop, record)
        # A random moment, once traffic flows (not a fixed sleep: at least some answers first).
        wait_for(lambda: len(answered) >= rng.randint(5, 200), timeout=20, what="impersonated answers")
        proxy.process.send_signal(signal.SIGKILL)
        proxy.process.wait()
        stop.set()
        for thread in threads:
            thread.join()
        logged = {json.loads(line).get("request_id") for line in complete_lines(log_file(proxy))}
        missing = [rid for rid in answered if rid not in logged]
        assert missing == [], f"round {round_number}: {len(missing)} of {len(answered)} answered requests are not in the log"
        result = run(["audit", "verify", str(log_file(proxy)), "--config", str(proxy.config_path)], check=False)
        assert result.returncode == 0 and result.stdout.startswith("ok: "), result.stdout + result.stderr
        proxy.start()  # the chain continues; the impersonation survives in the store
