#!/usr/bin/env python3
"""Two `actas serve` on one PostgreSQL database (SPEC §9, §10.1, §10.2), one run:

1. Cross-instance revocation latency. An administrator impersonates alice through instance B,
   sending requests back to back on one keep-alive connection; alice revokes her consent through
   instance A's JSON API (DELETE /.actas/api/v1/consent). Latency = the moment B's first refused
   response arrives minus the moment A's revoking response arrived (negative: B refused before A
   answered). Also counted: requests sent to B after A answered that B still forwarded as alice
   (SPEC: none). Then consent is granted again, the impersonation restarted, next trial.
2. Signed-in req/s, PostgreSQL store (instance A) against SQLite (a third instance, same
   configuration otherwise): wrk -t1, interleaved rounds, order alternated, medians.

usage: pg_instances.py ACTAS_BIN [--trials N] [--rounds N] [--dur S]   (--trials 0 / --rounds 0: skip a part)
Starts its own throwaway PostgreSQL cluster (scripts/postgres-cluster) unless BENCH_POSTGRES_URL
names a server (a database `actas_bench_<random>` is made there). Needs nginx, wrk, openssl,
PostgreSQL's server binaries, python3 with requests. Last two lines: the latency and the ratio.
"""
import argparse, http.client, json, os, re, shutil, signal, socket, ssl, statistics, subprocess, sys, tempfile, threading, time, uuid

import requests
import urllib3

urllib3.disable_warnings()
ap = argparse.ArgumentParser()
ap.add_argument('actas'); ap.add_argument('--trials', type=int, default=200)
ap.add_argument('--rounds', type=int, default=3); ap.add_argument('--dur', type=int, default=6)
ap.add_argument('--keep', action='store_true')
a = ap.parse_args()
ACTAS = os.path.abspath(a.actas)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NGINX = shutil.which('nginx') or '/usr/sbin/nginx'
run = tempfile.mkdtemp(prefix='actas-pg-')
os.chmod(run, 0o755)  # the cluster's owner (postgres, when run as root) keeps its files here
for d in ('logs', 'run', 'certs', 'a', 'b', 's'):
    os.makedirs(f'{run}/{d}')
subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                '-keyout', f'{run}/certs/key.pem', '-out', f'{run}/certs/cert.pem', '-days', '2',
                '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
               check=True, capture_output=True)
CLUSTER = os.path.join(ROOT, 'scripts', 'postgres-cluster')
cluster_dir = None
server_url = os.environ.get('BENCH_POSTGRES_URL')
if not server_url:
    cluster_dir = f'{run}/pg'
    server_url = subprocess.run([CLUSTER, 'init', cluster_dir], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([CLUSTER, 'start', cluster_dir], check=True)
db = 'actas_bench_' + uuid.uuid4().hex[:12]
subprocess.run(['psql', server_url, '-X', '-q', '-c', f'CREATE DATABASE {db}'], check=True)
pg_url = re.sub(r'/[^/?]*(\?|$)', f'/{db}\\1', server_url.split('://', 1)[1], count=1)
pg_url = 'postgres://' + pg_url


def free():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p


P_ORIGIN = free()
PORTS = {n: (free(), free()) for n in 'abs'}
open(f'{run}/origin.conf', 'w').write(f"""worker_processes 1; daemon off; pid {run}/run/origin.pid;
error_log {run}/logs/origin_error.log warn; events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 120s;
 server {{ listen 127.0.0.1:{P_ORIGIN} reuseport backlog=4096;
  location / {{ default_type text/plain; return 200 "hello world\\n"; }} }} }}""")
for n, (https, admin) in PORTS.items():
    store = 'sqlite:actas.db' if n == 's' else pg_url
    open(f'{run}/{n}/proxy.conf', 'w').write(f"""[listen]
https = "127.0.0.1:{https}"
admin = "127.0.0.1:{admin}"
tls_cert = "{run}/certs/cert.pem"
tls_key = "{run}/certs/key.pem"
dev_certs = false

[upstream]
url = "http://127.0.0.1:{P_ORIGIN}"

[store]
url = "{store}"

[impersonation]
max_duration = "24h"
default_duration = "12h"

[audit]
file = "audit.jsonl"

[demo]
enabled = false
""")
PW = 'bench-password-1234'
users = [dict(username='admin', email='admin@example.com', name='Admin', role='super_admin', groups=['admins'],
              org_unit='acme', status='active', last_login='2026-01-01T00:00:00Z', password=PW),
         dict(username='alice', email='alice@example.com', name='Alice', role='employee', groups=['staff'],
              org_unit='acme/emea', status='active', last_login='2026-01-01T00:00:00Z', password=PW),
         dict(username='bob', email='bob@example.com', name='Bob', role='employee', groups=['staff'],
              org_unit='acme/emea', status='active', last_login='2026-01-01T00:00:00Z', password=PW)]
open(f'{run}/users.json', 'w').write(json.dumps(users))
env = {k: v for k, v in os.environ.items() if not k.startswith('ACTAS_')}


def cli(n, *args):
    r = subprocess.run([ACTAS, *args, '--config', f'{run}/{n}/proxy.conf'], cwd=f'{run}/{n}', env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'actas {" ".join(args)} ({n}) failed: {r.stderr.strip()}')


procs = {}


def start(name, argv, cwd):
    f = open(f'{run}/logs/{name}.out', 'w')
    procs[name] = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)


def stop_all():
    for p in procs.values():
        try: os.killpg(p.pid, signal.SIGTERM)
        except Exception: pass
    for p in procs.values():
        try: p.wait(15)
        except Exception:
            try: os.killpg(p.pid, signal.SIGKILL)
            except Exception: pass
    if cluster_dir:
        subprocess.run([CLUSTER, 'stop', cluster_dir], capture_output=True)
    else:
        subprocess.run(['psql', server_url, '-X', '-q', '-c', f'DROP DATABASE IF EXISTS {db} WITH (FORCE)'], capture_output=True)
    if not a.keep: shutil.rmtree(run, ignore_errors=True)


def ready(port, t=90):
    end = time.time() + t
    while time.time() < end:
        try:
            if requests.get(f'http://127.0.0.1:{port}/readyz', timeout=1).status_code == 200: return True
        except requests.RequestException: pass
        time.sleep(0.2)
    return False


def base(n): return f'https://127.0.0.1:{PORTS[n][0]}'


def sign_in(n, username):
    s = requests.Session(); s.verify = False; s.trust_env = False
    page = s.get(base(n) + '/.actas/login').text
    form = re.search(r'<form[^>]*action="([^"]*)"', page)
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    fields.update(username=username, password=PW)
    r = s.post(base(n) + (form.group(1) if form else '/.actas/login'), data=fields,
               headers={'Origin': base(n), 'Sec-Fetch-Site': 'same-origin'}, allow_redirects=False)
    if not s.cookies.get('__Host-actas_session'):
        raise SystemExit(f'sign-in of {username} on {n} failed: {r.status_code} {r.text[:200]}')
    s.headers.update({'Accept': 'application/json', 'Origin': base(n), 'Sec-Fetch-Site': 'same-origin',
                      'X-CSRF-Token': s.get(base(n) + '/.actas/api/v1/me').json()['csrf_token']})
    s.base = base(n)
    return s


class Prober:
    """Requests as the impersonating administrator through B, one keep-alive connection."""
    def __init__(self, cookie):
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        self.ctx, self.cookie, self.conn = ctx, cookie, None

    def get(self, path):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection('127.0.0.1', PORTS['b'][0], context=self.ctx, timeout=10)
            try:
                sent = time.perf_counter()
                self.conn.request('GET', path, headers={'Cookie': self.cookie, 'Accept': 'application/json'})
                r = self.conn.getresponse(); body = r.read(); got = time.perf_counter()
                if r.getheader('connection', '').lower() == 'close': self.conn.close(); self.conn = None
                return sent, got, r.status, body
            except (http.client.HTTPException, OSError):
                self.conn.close(); self.conn = None
                if attempt: raise


def pct(xs, p):
    xs = sorted(xs); k = (len(xs) - 1) * p / 100; f = int(k)
    return xs[f] + (xs[min(f + 1, len(xs) - 1)] - xs[f]) * (k - f)


try:
    cli('a', 'users', 'import', f'{run}/users.json'); cli('s', 'users', 'import', f'{run}/users.json')
    start('origin', [NGINX, '-c', f'{run}/origin.conf', '-p', run], run)
    for n in 'abs':
        start(n, [ACTAS, 'serve', '--config', f'{run}/{n}/proxy.conf'], f'{run}/{n}')
    for n in 'abs':
        if not ready(PORTS[n][1]):
            print(open(f'{run}/logs/{n}.out').read()[-2000:]); raise SystemExit(f'instance {n} did not become ready')

    # 1. Revocation latency.
    sys.setswitchinterval(0.0002)  # the prober's thread is the only one; keep the GIL out of the clock
    alice, admin = sign_in('a', 'alice'), sign_in('b', 'admin')
    prober = Prober(f"__Host-actas_session={admin.cookies.get('__Host-actas_session')}")
    latencies, late_forwarded, refusals = [], 0, {}
    for t in range(a.trials):
        r = alice.post(alice.base + '/.actas/api/v1/consent', json={'hours': 1})
        if r.status_code not in (200, 201, 204): raise SystemExit(f'consent grant: {r.status_code} {r.text[:200]}')
        r = admin.post(admin.base + '/.actas/api/v1/impersonation',
                       json={'target': 'alice', 'reason': 'Benchmark of cross-instance revocation', 'duration': '1h'})
        if r.status_code != 201: raise SystemExit(f'impersonation start: {r.status_code} {r.text[:300]}')
        # B forwards as alice before the clock starts.
        if prober.get(f'/t{t}/warm')[2] != 200: raise SystemExit('B does not forward the impersonated request')
        done, outcome = threading.Event(), {}

        def revoke():
            r = alice.delete(alice.base + '/.actas/api/v1/consent')
            outcome['returned'] = time.perf_counter(); outcome['status'] = r.status_code
            done.set()
        revoker = threading.Thread(target=revoke); revoker.start()
        sent_after, i = [], 0
        while True:
            i += 1
            sent, got, status, body = prober.get(f'/t{t}/{i}')
            if status != 200:
                done.wait(10); revoker.join()
                if outcome['status'] not in (200, 204): raise SystemExit(f"consent revoke: {outcome['status']}")
                if status != 403 or not (b'consent_revoked' in body or b'impersonation_ended' in body):
                    raise SystemExit(f'B refused with {status} {body[:200]!r}, expected 403 (the session ended)')
                refusals[b'consent_revoked' in body] = refusals.get(b'consent_revoked' in body, 0) + 1
                latencies.append((got - outcome['returned']) * 1000)
                late_forwarded += sum(1 for s in sent_after if s > outcome['returned'])
                break
            sent_after.append(sent)
            if i > 100000: raise SystemExit('B never refused')
        if (t + 1) % 50 == 0:
            print(f'trial {t + 1}: p50 {pct(latencies, 50):.2f} ms, p99 {pct(latencies, 99):.2f} ms', flush=True)

    # 2. Signed-in throughput, PostgreSQL (A) against SQLite (S).
    bob = {n: f"__Host-actas_session={sign_in(n, 'bob').cookies.get('__Host-actas_session')}" for n in 'as'}

    def wrk_start(n, c, dur):
        return subprocess.Popen(['wrk', '-t1', f'-c{c}', f'-d{dur}s', '-H', f'Cookie: {bob[n]}', '-H', 'Accept: application/json',
                                 base(n) + '/bench'], stdout=subprocess.PIPE, text=True)

    def wrk_result(p):
        out = p.communicate()[0]
        bad = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
        return float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1)), int(bad.group(1)) if bad else 0

    def wrk(n, c, dur): return wrk_result(wrk_start(n, c, dur))

    # One after the other (alternating order), then side by side: both at the same moment, half
    # the connections each, so the machine's swings (other jobs on this shared box) hit both alike.
    res, side = {}, {}
    for r_ in range(a.rounds):
        for c in (64, 8):
            rnd = {}
            for n in (('a', 's') if r_ % 2 == 0 else ('s', 'a')):
                wrk(n, c, 1)
                rnd[n] = wrk(n, c, a.dur)
            res.setdefault(c, []).append(rnd)
            both = {n: wrk_start(n, c // 2, a.dur) for n in 'as'}
            both = {n: wrk_result(p) for n, p in both.items()}
            side.setdefault(c, []).append(both)
            print(json.dumps({'round': r_, 'conns': c, 'postgres': rnd['a'], 'sqlite': rnd['s'],
                              'side_by_side': {'postgres': both['a'], 'sqlite': both['s']}}), flush=True)

    if latencies: print(f'revocation A -> B over {len(latencies)} trials: p50 {pct(latencies, 50):.2f} ms, p90 {pct(latencies, 90):.2f} ms, '
          f'p99 {pct(latencies, 99):.2f} ms, max {max(latencies):.2f} ms, min {min(latencies):.2f} ms; '
          f'requests sent to B after A answered and still forwarded as alice: {late_forwarded} (goal p99 <= 100 ms, 0 late); '
          f'refusals naming consent_revoked: {refusals.get(True, 0)}, only impersonation_ended: {refusals.get(False, 0)}')
    line = []
    for c in (64, 8):
        ratios = [x['a'][0] / x['s'][0] for x in res[c]]
        bad = sum(x['a'][1] + x['s'][1] for x in res[c])
        line.append(f"c{c} {statistics.median(ratios):.3f} (PostgreSQL {statistics.median(x['a'][0] for x in res[c]):.0f}, "
                    f"SQLite {statistics.median(x['s'][0] for x in res[c]):.0f} req/s; rounds {', '.join(f'{x:.3f}' for x in ratios)}; non-2xx {bad})")
    print('signed-in req/s PostgreSQL/SQLite medians, one after the other: ' + '; '.join(line) + ' (goal >= 0.95)')
    line = []
    for c in (64, 8):
        ratios = [x['a'][0] / x['s'][0] for x in side[c]]
        bad = sum(x['a'][1] + x['s'][1] for x in side[c])
        line.append(f"c{c} {statistics.median(ratios):.3f} (rounds {', '.join(f'{x:.3f}' for x in ratios)}; non-2xx {bad})")
    print('signed-in req/s PostgreSQL/SQLite medians, side by side: ' + '; '.join(line) + ' (goal >= 0.95)')
finally:
    stop_all()
