#!/usr/bin/env python3
"""ActAs against nginx over HTTP/2 and HTTP/1.1 (TLS), interleaved rounds, one run.

usage: bench/h2_bench.py [ACTAS_BIN] [--rounds N] [--dur S] [--signed-in] [--keep] [--out FILE]

Loads, each against nginx (`listen ... ssl http2`) and ActAs, same origin, same run:
  h2 16x10   h2load -t1, 16 connections x 10 streams
  h2 64x1    h2load -t1, 64 connections x 1 stream
  h1 c64     wrk -t1, 64 connections (HTTP/1.1, so a regression there shows)
  h1 c8      wrk -t1, 8 connections
Per load and target: median req/s, proxy CPU us/request (utime+stime of the process group
from /proc/PID/stat, divided by completed requests) and peak RSS (sum of VmHWM over the
process group, reset through /proc/PID/clear_refs before each measured run, so each run has
its own peak). The target order alternates every round.

--signed-in: ActAs has no public paths; a user made with `actas users add --password-stdin`
signs in through the form (GET /.actas/login for the CSRF token, POST /.actas/login) and every
request carries the session cookie (nginx gets the same header).

Anomalies are counted, printed and make the exit status 1: h2load failed/errored/timed-out
requests, 3xx/4xx/5xx, a connection that did not negotiate h2; wrk socket errors and
non-2xx/3xx; a run that hung (killed after duration + 30 s); ActAs request-log records of the
run whose proto, status or user is not the expected one (a 499 for each request still in flight
when the client stops is expected), or fewer records than requests done.
Last line: the summary. Raw numbers go to bench/results/h2-<time>[-signed-in].json.
Needs nginx, h2load (nghttp2-client), wrk, openssl, curl.
"""
import argparse, datetime, hashlib, http.client, json, os, re, shutil, signal, socket, ssl
import statistics, subprocess, sys, tempfile, time, urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
ap.add_argument('actas', nargs='?', default=os.environ.get('BENCH_ACTAS', f'{ROOT}/.build/release/actas'))
ap.add_argument('--rounds', type=int, default=3)
ap.add_argument('--dur', type=int, default=8, help='seconds per measured run')
ap.add_argument('--signed-in', action='store_true', help='every request carries a signed-in session cookie')
ap.add_argument('--loads', default='h2-16x10,h2-64x1,h1-c64,h1-c8', help='comma-separated subset')
ap.add_argument('--keep', action='store_true', help='keep the run directory (logs, configs)')
ap.add_argument('--out', help='raw results file (default bench/results/h2-<time>[-signed-in].json)')
a = ap.parse_args()

LOADS = {  # name -> (protocol, connections, streams per connection)
    'h2-16x10': ('h2', 16, 10), 'h2-64x1': ('h2', 64, 1),
    'h1-c64': ('h1', 64, 1), 'h1-c8': ('h1', 8, 1),
}
loads = [x.strip() for x in a.loads.split(',') if x.strip()]
for name in loads:
    if name not in LOADS:
        ap.error(f'unknown load {name!r}; known: {", ".join(LOADS)}')
for tool in ('nginx', 'h2load', 'wrk', 'openssl', 'curl'):
    if not shutil.which(tool) and not os.path.exists(f'/usr/sbin/{tool}'):
        print(f'missing tool {tool} (apt-get install nginx nghttp2-client wrk openssl curl)'); sys.exit(2)
if not os.access(a.actas, os.X_OK):
    print(f'no ActAs binary at {a.actas} (swift build -c release --product actas)'); sys.exit(2)
NGINX = shutil.which('nginx') or '/usr/sbin/nginx'
USER, PASSWORD = 'bench', 'bench-password-h2'
SESSION_COOKIE = '__Host-actas_session'

run = tempfile.mkdtemp(prefix='actas-h2bench-')
for d in ('logs', 'run', 'certs', 'data'):
    os.makedirs(f'{run}/{d}')
subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                '-keyout', f'{run}/certs/key.pem', '-out', f'{run}/certs/cert.pem', '-days', '2',
                '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
               check=True, capture_output=True)


def free_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p


P_ORIGIN, P_NGINX, P_ACTAS, P_ADMIN = free_port(), free_port(), free_port(), free_port()
# The same origin and nginx proxy as ../shared/bench/h2_vs_nginx.py; `ssl http2` serves
# HTTP/1.1 too (ALPN), so the wrk loads use the same nginx server.
open(f'{run}/origin.conf', 'w').write(f"""worker_processes 1; daemon off; pid {run}/run/origin.pid;
error_log {run}/logs/origin_error.log warn; events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 120s;
 server {{ listen 127.0.0.1:{P_ORIGIN} reuseport backlog=4096;
  location / {{ default_type text/plain; return 200 "hello world\\n"; }} }} }}""")
open(f'{run}/nginx.conf', 'w').write(f"""worker_processes 2; daemon off; pid {run}/run/nginx.pid;
error_log {run}/logs/nginx_error.log warn; events {{ worker_connections 4096; }}
http {{ access_log {run}/logs/nginx_access.log; keepalive_requests 1000000; keepalive_timeout 120s;
 upstream origin {{ server 127.0.0.1:{P_ORIGIN}; keepalive 128; keepalive_requests 1000000; }}
 server {{ listen 127.0.0.1:{P_NGINX} ssl http2 reuseport backlog=4096;
  ssl_certificate {run}/certs/cert.pem; ssl_certificate_key {run}/certs/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
  location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
   proxy_set_header X-Forwarded-User alice; proxy_set_header X-Forwarded-For $remote_addr; }} }} }}""")
public_paths = '[]' if a.signed_in else '["/*"]'
open(f'{run}/proxy.conf', 'w').write(f"""[listen]
https = "127.0.0.1:{P_ACTAS}"
admin = "127.0.0.1:{P_ADMIN}"
tls_cert = "certs/cert.pem"
tls_key = "certs/key.pem"
dev_certs = false

[upstream]
url = "http://127.0.0.1:{P_ORIGIN}"

[store]
url = "sqlite:data/actas.db"

[auth]
public_paths = {public_paths}

[audit]
file = "logs/audit.jsonl"

[demo]
enabled = false
""")

procs = {}


def start(name, argv):
    f = open(f'{run}/logs/{name}.out', 'w')
    procs[name] = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, cwd=run, start_new_session=True)


def stop_all():
    for p in procs.values():
        try: os.killpg(p.pid, signal.SIGTERM)
        except Exception: pass
    for p in procs.values():
        try: p.wait(5)
        except Exception:
            try: os.killpg(p.pid, signal.SIGKILL)
            except Exception: pass
    if a.keep: print(f'run directory kept: {run}')
    else: shutil.rmtree(run, ignore_errors=True)


def wait_port(port, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        try: socket.create_connection(('127.0.0.1', port), 0.5).close(); return True
        except OSError: time.sleep(0.2)
    return False


def group(pid):
    """The process group led by pid (nginx's master and workers; ActAs alone)."""
    out = subprocess.run(['pgrep', '-g', str(pid)], capture_output=True, text=True).stdout.split()
    return {pid} | {int(x) for x in out}


CLK = os.sysconf('SC_CLK_TCK')


def cpu_ticks(pid):
    total = 0
    for p in group(pid):
        try:
            f = open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split(); total += int(f[11]) + int(f[12])
        except OSError: pass
    return total


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0); False if the kernel refused."""
    ok = True
    for p in group(pid):
        try: open(f'/proc/{p}/clear_refs', 'w').write('5')
        except OSError: ok = False
    return ok


def peak_rss_kib(pid):
    total = 0
    for p in group(pid):
        try: total += int(re.search(r'VmHWM:\s+(\d+)', open(f'/proc/{p}/status').read()).group(1))
        except (OSError, AttributeError): pass
    return total


def https(method, path, headers=None, body=None):
    """One request to ActAs over TLS with the standard library: (status, headers, body)."""
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection('127.0.0.1', P_ACTAS, context=ctx, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


def set_cookie(headers, name):
    for k, v in headers:
        if k.lower() == 'set-cookie' and v.startswith(name + '='):
            return v.split(';', 1)[0].split('=', 1)[1]
    return None


def sign_in():
    """Signs USER in through the form, as a browser does; returns the session cookie value."""
    status, headers, body = https('GET', '/.actas/login', {'Accept': 'text/html'})
    if status != 200: raise SystemExit(f'GET /.actas/login answered {status}')
    token = re.search(rb'name="csrf_token" value="([^"]+)"', body)
    login_cookie = set_cookie(headers, '__Host-actas_login')
    if not token or not login_cookie: raise SystemExit('the login form had no CSRF token or login cookie')
    form = urllib.parse.urlencode({'csrf_token': token.group(1).decode(), 'username': USER, 'password': PASSWORD})
    status, headers, _ = https('POST', '/.actas/login', {
        'Content-Type': 'application/x-www-form-urlencoded', 'Accept': 'text/html',
        'Origin': f'https://127.0.0.1:{P_ACTAS}', 'Cookie': f'__Host-actas_login={login_cookie}'}, form)
    session = set_cookie(headers, SESSION_COOKIE)
    if status != 303 or not session: raise SystemExit(f'sign-in failed: {status}')
    return session


def curl_probe(url, proto, header):
    """(HTTP version, status) curl negotiates with the target, e.g. ('2', '200')."""
    argv = ['curl', '-sk', '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
            '--http2' if proto == 'h2' else '--http1.1', url]
    if header: argv[1:1] = ['-H', header]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.split()
    return tuple(out) if len(out) == 2 else ('?', '?')


def h2load(url, conns, streams, dur, header):
    argv = ['h2load', '-c', str(conns), '-m', str(streams), '-t', '1', '-D', str(dur), url]
    if header: argv[1:1] = ['-H', header]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=dur + 30).stdout
    except subprocess.TimeoutExpired:
        return dict(rps=None, done=0, anomalies={'hung': 1})
    m = re.search(r'finished in [\d.]+\w+, ([\d.]+) req/s', out)
    done = re.search(r'requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout', out)
    st = re.search(r'status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx', out)
    if not m or not done or not st:
        return dict(rps=None, done=0, anomalies={'unparsed output': 1}, output=out[-1500:])
    anomalies = {'failed': int(done.group(2)), 'errored': int(done.group(3)), 'timeout': int(done.group(4)),
                 '3xx': int(st.group(2)), '4xx': int(st.group(3)), '5xx': int(st.group(4))}
    if not re.search(r'application protocol: h2\b', out, re.I): anomalies['not h2'] = 1
    return dict(rps=float(m.group(1)), done=int(done.group(1)), anomalies=anomalies)


def wrk(url, conns, dur, header):
    argv = ['wrk', '-t1', f'-c{conns}', f'-d{dur}s', url]
    if header: argv[1:1] = ['-H', header]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=dur + 30).stdout
    except subprocess.TimeoutExpired:
        return dict(rps=None, done=0, anomalies={'hung': 1})
    m = re.search(r'Requests/sec:\s+([\d.]+)', out)
    done = re.search(r'(\d+) requests in', out)
    if not m or not done:
        return dict(rps=None, done=0, anomalies={'unparsed output': 1}, output=out[-1500:])
    anomalies = {'non-2xx/3xx': 0, 'socket errors': 0}
    bad = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    if bad: anomalies['non-2xx/3xx'] = int(bad.group(1))
    sock = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    if sock: anomalies['socket errors'] = sum(int(x) for x in sock.groups())
    return dict(rps=float(m.group(1)), done=int(done.group(1)), anomalies=anomalies)


def load_run(load, url, dur, header):
    proto, conns, streams = LOADS[load]
    if proto == 'h2': return h2load(url, conns, streams, dur, header)
    return wrk(url, conns, dur, header)


class RequestLog:
    """Reads the request-log records ActAs wrote since the last call (across rotations: files
    are followed by inode, since a rotated file keeps its inode)."""
    def __init__(self, directory):
        self.directory, self.offsets = directory, {}

    def settle(self, limit=10.0):
        """Waits until the log stops growing (the writer runs behind the responses)."""
        end, last = time.time() + limit, None
        while time.time() < end:
            size = sum(os.stat(f'{self.directory}/{n}').st_size for n in os.listdir(self.directory) if n.startswith('audit'))
            if size == last: return
            last = size; time.sleep(0.2)

    def new_records(self):
        self.settle()
        counts = dict(records=0, proto={}, status={}, user={})
        for name in sorted(os.listdir(self.directory)):
            if not name.startswith('audit'): continue
            path = f'{self.directory}/{name}'
            inode = os.stat(path).st_ino
            with open(path, 'rb') as f:
                f.seek(self.offsets.get(inode, 0))
                data = f.read()
            end = data.rfind(b'\n') + 1  # a half-written last line is read next time
            self.offsets[inode] = self.offsets.get(inode, 0) + end
            for line in data[:end].splitlines():
                if b'"type":"request"' not in line: continue
                rec = json.loads(line)
                counts['records'] += 1
                for key in ('proto', 'status', 'user'):
                    value = str(rec.get(key))
                    counts[key][value] = counts[key].get(value, 0) + 1
        return counts


def log_anomalies(counts, load, done):
    proto = 'h2' if LOADS[load][0] == 'h2' else 'http/1.1'
    user = USER if a.signed_in else 'None'
    found = {}
    n = counts['records']
    if n < done: found['fewer log records than requests'] = done - n
    if counts['proto'].get(proto, 0) != n: found[f'log proto not {proto}'] = n - counts['proto'].get(proto, 0)
    # The client stops with requests in flight; ActAs logs those as 499 (client went away).
    in_flight = LOADS[load][1] * LOADS[load][2]
    other = n - counts['status'].get('200', 0) - min(counts['status'].get('499', 0), in_flight)
    if other: found['log status not 200 (beyond 499s cut at the end)'] = other
    if counts['user'].get(user, 0) != n: found[f'log user not {user}'] = n - counts['user'].get(user, 0)
    return found


def loadavg():
    return open('/proc/loadavg').read().split()[:3]


started = datetime.datetime.now(datetime.timezone.utc)
results = dict(started=started.isoformat(timespec='seconds'), actas=os.path.abspath(a.actas),
               actas_sha256=hashlib.sha256(open(a.actas, 'rb').read()).hexdigest(),
               rounds=a.rounds, dur=a.dur, signed_in=a.signed_in, loads=loads, loadavg_start=loadavg(), runs=[])
try:
    if a.signed_in:
        add = subprocess.run([a.actas, 'users', 'add', USER, '--email', f'{USER}@example.com', '--groups', 'bench',
                              '--password-stdin', '--config', f'{run}/proxy.conf'],
                             input=PASSWORD + '\n', capture_output=True, text=True, cwd=run)
        if add.returncode != 0: raise SystemExit(f'actas users add failed: {add.stdout}{add.stderr}')
    start('origin', [NGINX, '-c', f'{run}/origin.conf', '-p', run])
    start('nginx', [NGINX, '-c', f'{run}/nginx.conf', '-p', run])
    start('actas', [a.actas, 'serve', '--config', f'{run}/proxy.conf'])
    for name, port in (('origin', P_ORIGIN), ('nginx', P_NGINX), ('actas', P_ACTAS)):
        if not wait_port(port):
            print(open(f'{run}/logs/{name}.out').read()[-2000:]); raise SystemExit(f'{name} did not start')
    header = None
    if a.signed_in:
        status, _, _ = https('GET', '/', {})
        if status == 200: raise SystemExit('ActAs answered 200 without a session; the run would not be signed in')
        session = sign_in()
        header = f'cookie: {SESSION_COOKIE}={session}'
        status, _, body = https('GET', '/.actas/api/v1/me', {'Cookie': f'{SESSION_COOKIE}={session}'})
        if status != 200 or json.loads(body).get('user', {}).get('username') != USER:
            raise SystemExit(f'/.actas/api/v1/me with the session answered {status}: {body[:200]!r}')
    URL = {'nginx': f'https://127.0.0.1:{P_NGINX}/', 'actas': f'https://127.0.0.1:{P_ACTAS}/'}
    for target in ('nginx', 'actas'):
        for proto, want in (('h2', '2'), ('h1', '1.1')):
            got = curl_probe(URL[target], proto, header)
            if got != (want, '200'):
                raise SystemExit(f'{target} over {proto}: curl got HTTP/{got[0]} {got[1]}; cannot benchmark')
    log = RequestLog(f'{run}/logs')
    log.new_records()
    rss_resets = True
    print(f'ActAs {a.actas} ({"signed in as " + USER if a.signed_in else "public paths"}), '
          f'{a.rounds} rounds of {a.dur} s, load average {" ".join(loadavg())}', flush=True)
    for r in range(a.rounds):
        for load in loads:
            order = ['nginx', 'actas'] if r % 2 == 0 else ['actas', 'nginx']
            for target in order:
                pid = procs[target].pid
                warm = load_run(load, URL[target], 1, header)
                if target == 'actas': log.new_records()  # the warm-up's records are not this run's
                rss_resets &= reset_peak_rss(pid)
                t0 = cpu_ticks(pid)
                res = load_run(load, URL[target], a.dur, header)
                t1 = cpu_ticks(pid)
                res.update(round=r, load=load, target=target, peak_rss_kib=peak_rss_kib(pid),
                           cpu_us_per_req=(t1 - t0) / CLK * 1e6 / res['done'] if res['done'] else None)
                if warm['anomalies'].get('hung'): res['anomalies']['warm-up hung'] = 1
                if target == 'actas':
                    res['log'] = log.new_records()
                    res['anomalies'].update(log_anomalies(res['log'], load, res['done']))
                res['anomalies'] = {k: v for k, v in res['anomalies'].items() if v}
                results['runs'].append(res)
                print(json.dumps({k: res[k] for k in ('round', 'load', 'target', 'rps', 'cpu_us_per_req',
                                                       'peak_rss_kib', 'anomalies')}), flush=True)
    results['loadavg_end'] = loadavg()
    results['rss_per_run'] = rss_resets

    def runs(load, target):
        return [x for x in results['runs'] if x['load'] == load and x['target'] == target]

    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def fmt(v, spec):
        return format(v, spec) if v is not None else '-'

    rss_note = 'peak RSS MiB' if rss_resets else 'peak RSS MiB (cumulative: clear_refs refused)'
    print()
    print(f'{"load":<9} {"target":<6} {"req/s":>9} {"CPU us/req":>10} {rss_note:>12}  {"req/s per round":<26} anomalies')
    summary, total_anomalies, medians = [], 0, {}
    for load in loads:
        row = {}
        for target in ('nginx', 'actas'):
            rs = runs(load, target)
            anomalies = {}
            for x in rs:
                for k, v in x['anomalies'].items(): anomalies[k] = anomalies.get(k, 0) + v
            total_anomalies += sum(anomalies.values())
            row[target] = dict(rps=med([x['rps'] for x in rs]), cpu=med([x['cpu_us_per_req'] for x in rs]),
                               rss=med([x['peak_rss_kib'] / 1024 for x in rs]), anomalies=anomalies)
            print(f'{load:<9} {target:<6} {fmt(row[target]["rps"], ".0f"):>9} {fmt(row[target]["cpu"], ".1f"):>10} '
                  f'{fmt(row[target]["rss"], ".1f"):>12}  '
                  f'{", ".join(fmt(x["rps"], ".0f") for x in rs):<26} '
                  + (", ".join(f"{k} {v}" for k, v in anomalies.items()) or "none"))
        pairs = [(n, c) for n, c in zip(runs(load, 'nginx'), runs(load, 'actas')) if n['rps'] and c['rps']]
        rps_ratio = med([c['rps'] / n['rps'] for n, c in pairs])
        cpu_ratio = med([c['cpu_us_per_req'] / n['cpu_us_per_req'] for n, c in pairs
                         if n['cpu_us_per_req'] and c['cpu_us_per_req']])
        row['ratio'] = dict(rps=rps_ratio, cpu=cpu_ratio)
        print(f'{load:<9} {"ratio":<6} {fmt(rps_ratio, ".2f"):>9} {fmt(cpu_ratio, ".2f"):>10} '
              f'{fmt(row["actas"]["rss"] and row["nginx"]["rss"] and row["actas"]["rss"] / row["nginx"]["rss"], ".2f"):>12}  '
              + ", ".join(f"{c['rps'] / n['rps']:.2f}" for n, c in pairs))
        medians[load] = row
        summary.append(f'{load} {fmt(rps_ratio, ".2f")}x req/s {fmt(cpu_ratio, ".2f")}x CPU/req '
                       f'RSS {fmt(row["actas"]["rss"], ".0f")}/{fmt(row["nginx"]["rss"], ".0f")} MiB')
    results['medians'] = medians
    line = (f'h2bench {"signed-in" if a.signed_in else "public"} actas/nginx: ' + '; '.join(summary)
            + f'; anomalies {total_anomalies}')
    results['summary'] = line
    out = a.out or f'{ROOT}/bench/results/h2-{started.strftime("%Y%m%dT%H%M%SZ")}{"-signed-in" if a.signed_in else ""}.json'
    os.makedirs(os.path.dirname(out), exist_ok=True)
    json.dump(results, open(out, 'w'), indent=1)
    print(f'\nload average {" ".join(results["loadavg_start"])} at the start, {" ".join(results["loadavg_end"])} at the end; raw: {out}')
    print(line)
    sys.exit(0 if total_anomalies == 0 else 1)
finally:
    stop_all()
