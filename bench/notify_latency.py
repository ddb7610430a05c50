#!/usr/bin/env python3
"""Issue 19's "arrives within a second of starting": the time from the answer to
`POST /.actas/api/v1/impersonation` (201) to the moment a real receiver process
(tests/e2e/webhook_receiver.py) has the signed `impersonation_started` webhook, over N trials
(start, wait for the delivery, exit). SQLite store, one instance, the outbox sender as shipped
(it looks at the outbox every 200 ms when idle).

usage: ACTAS_BIN=<actas> .venv/bin/python bench/notify_latency.py [N]   Last line: p50 / p90 / max.
"""
import os, statistics, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "tests" / "e2e"
sys.path.insert(0, str(HERE))
from conftest import Proxy, Upstream, wait_for  # noqa: E402
from test_impersonation import Admin, setup_site  # noqa: E402
from test_notify import Receiver, notify_config  # noqa: E402

trials = int(sys.argv[1]) if len(sys.argv) > 1 else 30
tmp = Path(tempfile.mkdtemp(prefix="notify-latency."))
upstream = Upstream(tmp)
receiver = Receiver(tmp)
(tmp / "proxy").mkdir()
proxy = Proxy(tmp / "proxy", upstream.port, notify_config(tmp, receiver.url))
try:
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    gaps = []
    for trial in range(trials):
        response, _ = admin.start("emp")
        answered = time.time()
        assert response.status == 201, response
        wait_for(lambda: len(receiver.events("impersonation_started")) > trial, timeout=30, what="the webhook")
        request, _ = receiver.events("impersonation_started")[trial]
        gaps.append((request["at"] - answered) * 1000)
        admin.api("DELETE", "/.actas/api/v1/impersonation")
    gaps.sort()
    print(f"impersonation_started webhook after the 201, {trials} trials: p50 {statistics.median(gaps):.0f} ms, "
          f"p90 {gaps[int(len(gaps) * 0.9) - 1]:.0f} ms, max {gaps[-1]:.0f} ms")
finally:
    proxy.stop()
    receiver.stop()
    upstream.stop()
