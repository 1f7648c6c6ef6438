#!/usr/bin/env python3
"""bench/http/bench.py - zerg's http module against nginx, side by side.

Each server runs one worker pinned to CPU 0, wrk runs on CPU 1; the workloads
alternate zerg, nginx, zerg, nginx... for ROUNDS rounds and the table shows
medians: req/s, server CPU microseconds per request (utime+stime of the whole
server process tree, io_uring's worker threads included), for the file
workloads also server CPU milliseconds per GB of body, syscalls per request (perf raw_syscalls:sys_enter on
the worker, in one more run per server after the rounds: the tracepoint costs
every syscall, so it stays out of the timed rounds) and the zerg/nginx ratios. Loopback only, bounded in time.
Both servers cache open files (zerg open_file_cache_valid, nginx
open_file_cache) and send file bodies without a copy (nginx sendfile, zerg
sendfile: splice from 64k on). The proxy workload has each server
proxy_pass /proxy/ to one nginx backend (`return 200`, on the load CPU), a new
upstream connection per request as both do by default; proxy-keepalive keeps
64 idle upstream connections per worker (zerg proxy_keepalive, nginx upstream
keepalive with proxy_http_version 1.1).

wrk drives every workload but those named uring-*: on its one core wrk tops
out near what one nginx worker serves (its CPU, the load% column, near 100),
so it shows both servers at the same rate. The uring-* workloads use
bench/http/http_load instead, an io_uring load generator (one recv and one
send per request in flight, submitted and reaped in batches) that drives the
same requests for less CPU per request, so the server rather than the load is
the bound. load% is the load generator's CPU use over the zerg runs.

Usage: bench.py [--zerg BIN] [--modules DIR] [--rounds N] [--duration S]
                [--only NAME[,NAME]] [--out FILE] [--zc] [--http-load PROG] [--limit]
                [--peer nginx|no-metrics]
With --limit a third server joins the rotation: the same zerg with a
limit_req on / that never triggers (a shared-memory zone keyed on
$remote_addr, nodelay), and a second table compares it with plain zerg.
--peer no-metrics runs the same zerg with `metrics: false` (requests not
counted in the shared metrics) in nginx's place, while /status of the zerg
with metrics is scraped every second: what the metrics cost per request.
zerg runs with uring.send_zc_threshold 0 unless --zc: on loopback SEND_ZC
costs a copy anyway and its completion notifications hold back big answers.
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import benchlib as bl  # noqa: E402

HELLO = "Hello, World!"
# the body bytes of each file workload's answer: its CPU per GB is reported
FILE_BYTES = {"static-1MiB-c16": 1 << 20, "static-1KiB-c64": 1024}

WORKLOADS = [
    # name, path, connections, pipeline depth (uring-*: http_load, else wrk)
    ("keepalive-c64", "/", 64, 1),
    ("keepalive-c256", "/", 256, 1),
    ("pipeline16-c64", "/", 64, 16),
    ("uring-keepalive-c64", "/", 64, 1),
    ("uring-keepalive-c256", "/", 256, 1),
    ("uring-pipeline16-c64", "/", 64, 16),
    ("static-1MiB-c16", "/static/1m.bin", 16, 1),
    ("static-1KiB-c64", "/static/1k.html", 64, 1),
    ("proxy-c64", "/proxy/", 64, 1),
    ("proxy-keepalive-c64", "/proxyka/", 64, 1),
]


class Server:
    def __init__(self, name, argv, port, tmp):
        self.name, self.argv, self.port, self.tmp = name, argv, port, tmp
        self.proc = None
        self.cpu = bl.SERVER_CPU

    def start(self):
        self.proc = bl.start(self.argv, self.cpu, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.tmp, self.name + ".out"), "w"))
        bl.need_port("127.0.0.1", self.port)
        time.sleep(0.3)
        kids = bl.tree_pids(self.proc.pid)[1:]
        self.worker = kids[0] if kids else self.proc.pid

    def ensure(self):
        """Restarts the server if it died (a shared machine: someone may kill it)."""
        alive = self.proc and self.proc.poll() is None
        if alive:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                alive = False
        print(f"# {self.name} was gone: restarting it", file=sys.stderr, flush=True)
        self.stop()
        self.start()

    def stop(self):
        if self.proc:
            bl.stop(self.proc, 10,
                    signal.SIGTERM if self.name.startswith("zerg") else signal.SIGQUIT)


# --limit: a rate no benchmark reaches, so every request passes the limit
LIMIT = """      limit_zones: { bench: { key: $remote_addr, rate: 1000000r/s } }
"""
LIMIT_RULE = ", limit_req: { zone: bench, burst: 1000000, nodelay: true }"


def make_zerg(args, tmp, www, backend, name="zerg", metrics=True):
    port = bl.free_port()
    limit = name == "zerg-limit"
    conf = os.path.join(tmp, name + ".yaml")
    with open(conf, "w") as f:
        f.write(f"""modules_path: {args.modules}
worker_processes: 1
error_log: {{ path: {tmp}/{name}-error.log, level: warn }}
pid: {tmp}/{name}.pid
{"" if args.zc else "uring: { send_zc_threshold: 0 }  # SEND_ZC only pays on a real NIC"}
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port}"]
    backlog: 4096
    module: http
    http:
      keepalive_requests: 1000000
      open_file_cache_valid: 1s
      metrics: {"true" if metrics else "false"}
{LIMIT if limit else ""}      locations:
        - {{ path: /status, status: true }}
        - {{ path: "=/", return: {{ status: 200, body: "{HELLO}", headers: {{ Content-Type: text/plain }} }}{LIMIT_RULE if limit else ""} }}
        - {{ path: /static/, root: {os.path.dirname(www)} }}
        - {{ path: /proxy/, proxy_pass: "http://127.0.0.1:{backend}/" }}
        - {{ path: /proxyka/, proxy_pass: "http://127.0.0.1:{backend}/", proxy_keepalive: 64 }}
""")
    return Server(name, [args.zerg, "-c", conf], port, tmp)


def scrape_every_second(port, stop):
    """A Prometheus-like scraper of /status, as the metrics cost it."""
    while not stop.wait(1.0):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while s.recv(65536):
                    pass
        except OSError:
            pass


def make_nginx(args, tmp, www, backend=None, name="nginx"):
    """The peer (proxying /proxy/ to backend), or with backend None the
    backend itself."""
    port = bl.free_port()
    conf = os.path.join(tmp, name + ".conf")
    proxy = (f"location /proxy/ {{ proxy_pass http://127.0.0.1:{backend}/; }}\n"
             f"        location /proxyka/ {{ proxy_pass http://ka/; proxy_http_version 1.1;"
             f" proxy_set_header Connection \"\"; }}" if backend else "")
    upstream = (f"upstream ka {{ server 127.0.0.1:{backend}; keepalive 64; }}"
                if backend else "")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes 1;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 1s;
    client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/pt; fastcgi_temp_path {tmp}/ft;
    uwsgi_temp_path {tmp}/ut; scgi_temp_path {tmp}/st;
    default_type application/octet-stream;
    {upstream}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = / {{ default_type text/plain; return 200 "{HELLO}"; }}
        location /static/ {{ root {os.path.dirname(www)}; }}
        {proxy}
    }}
}}
""")
    return Server(name, [args.nginx, "-p", tmp, "-e", f"{tmp}/{name}-error.log", "-c", conf],
                  port, tmp)


def wrk_command(args, url, conns, depth, env):
    cmd = [args.wrk, "-t1", f"-c{conns}", f"-d{args.duration}s", "--latency", url]
    if depth > 1:
        cmd[2:2] = ["-s", os.path.join(HERE, "pipeline.lua")]
        env["PIPELINE_DEPTH"] = str(depth)
    return cmd


def wrk_result(out):
    """(requests, req/s, note) from wrk's report."""
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    reqs = int(m.group(1)) if m else 0
    errs = re.search(r"Socket errors:.*", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    note = (errs.group(0) + " " if errs else "") + (f"non-2xx {non2xx.group(1)}" if non2xx else "")
    return reqs, rps, note.strip()


def http_load_result(out):
    """(requests, req/s, note) from http_load's line."""
    kv = bl.kv(out)
    note = " ".join(f"{k} {kv[k]}" for k in ("errors", "non_2xx") if kv.get(k, "0") != "0")
    if "requests" not in kv:
        note = (note + " " + out.strip()[-200:]).strip()
    return int(kv.get("requests", 0)), float(kv.get("requests_per_s", 0)), note


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_load(args, srv, name, path, conns, depth, count_syscalls=False):
    """One run of the load against srv. With count_syscalls, perf counts the
    worker's syscalls over the middle of the run; that run's CPU figures are
    not used (the tracepoint costs each syscall, so nginx more than zerg)."""
    env = dict(os.environ)
    if name.startswith("uring-"):
        cmd = [args.http_load, "127.0.0.1", str(srv.port), path, str(conns),
               str(args.duration), str(depth)]
        parse = http_load_result
    else:
        cmd = wrk_command(args, f"http://127.0.0.1:{srv.port}{path}", conns, depth, env)
        parse = wrk_result
    t0, load0 = bl.tree_ticks(srv.proc.pid), children_cpu_s()
    load = bl.start(cmd, bl.LOAD_CPU, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    window = max(1, args.duration - 2)
    sc = None
    if count_syscalls:
        time.sleep(1)
        sc = bl.perf_syscalls([srv.worker], window)
    out = load.communicate(timeout=args.duration + 30)[0].decode()
    ticks = bl.tree_ticks(srv.proc.pid) - t0
    load_pct = 100.0 * (children_cpu_s() - load0) / args.duration
    reqs, rps, note = parse(out)
    cpu_us = bl.ticks_to_us(ticks) / reqs if reqs else 0.0
    sys_per = sc / (rps * window) if sc is not None and rps else float("nan")
    return {"rps": rps, "cpu_us": cpu_us, "sys": sys_per, "load": load_pct, "note": note}


def limit_table(results, syscalls):
    """zerg with the limit against plain zerg, same run: the CPU cost of it."""
    lines = ["", f"{'workload':<20} {'limit req/s':>11} {'zerg req/s':>11} {'limit us/req':>12} "
             f"{'zerg us/req':>11} {'cpu ratio':>9} {'limit sc/req':>12}"]
    for name, _, _, _ in WORKLOADS:
        if (name, "zerg-limit") not in results:
            continue
        z, lim = results[(name, "zerg")], results[(name, "zerg-limit")]
        zc, lc = bl.median(x["cpu_us"] for x in z), bl.median(x["cpu_us"] for x in lim)
        lines.append(f"{name:<20} {bl.median(x['rps'] for x in lim):>11.0f} "
                     f"{bl.median(x['rps'] for x in z):>11.0f} {lc:>12.2f} {zc:>11.2f} "
                     f"{lc / zc if zc else 0:>9.3f} {syscalls[(name, 'zerg-limit')]:>12.3f}")
    return lines


def server_args(ap):
    """The options naming zerg, its modules, nginx and wrk (bench/tls has
    them too)."""
    build = os.environ.get("ZERG_BUILDDIR", os.getcwd())
    ap.add_argument("--zerg", default=os.environ.get("ZERG_BIN", os.path.join(build, "zerg")))
    ap.add_argument("--modules", default=os.environ.get("ZERG_MODULES",
                                                        os.path.join(build, "build-modules")))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    server_args(ap)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--zc", action="store_true",
                    help="keep the core's SEND_ZC threshold (on loopback the kernel copies "
                         "anyway and waiting for ZC notifications slows big answers)")
    ap.add_argument("--out", default="")
    ap.add_argument("--limit", action="store_true",
                    help="also run zerg with a limit_req that never triggers, and compare")
    ap.add_argument("--peer", choices=("nginx", "no-metrics"), default="nginx",
                    help="what zerg is compared with: nginx, or the same zerg with metrics: false")
    ap.add_argument("--http-load", default=os.environ.get("HTTP_LOAD"),
                    help="bench/http's http_load (default: BUILD/bench/http/http_load next to "
                         "--zerg, else compiled from bench/http/http_load.c)")
    args = ap.parse_args()
    if not os.path.exists(args.zerg):
        sys.exit(f"no zerg binary at {args.zerg} (run from the build folder or pass --zerg)")
    tmp = tempfile.mkdtemp(prefix="zg-bench-http-")
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    only = set(filter(None, args.only.split(",")))
    if any(w[0].startswith("uring-") and (not only or w[0] in only) for w in WORKLOADS):
        args.http_load = bl.program(
            args.http_load or os.path.join(os.path.dirname(os.path.abspath(args.zerg)), "bench",
                                           "http", "http_load"),
            os.path.join(HERE, "http_load.c"), tmp)
    www = os.path.join(tmp, "static")
    os.makedirs(www)
    with open(os.path.join(www, "1m.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    os.chmod(os.path.join(www, "1m.bin"), 0o644)
    with open(os.path.join(www, "1k.html"), "w") as f:
        f.write("<p>" + "x" * 1017 + "</p>")
    os.chmod(os.path.join(www, "1k.html"), 0o644)
    backend = make_nginx(args, tmp, www, name="backend")
    backend.cpu = bl.LOAD_CPU
    zerg = make_zerg(args, tmp, www, backend.port)
    if args.peer == "nginx":
        nginx = make_nginx(args, tmp, www, backend.port)
    else:
        nginx = make_zerg(args, tmp, www, backend.port, name="zerg-nometrics", metrics=False)
    peer = nginx.name
    servers = [zerg, nginx] + ([make_zerg(args, tmp, www, backend.port, "zerg-limit")]
                               if args.limit else [])
    results, syscalls = {}, {}
    stop_scraper = threading.Event()
    try:
        backend.start()
        for srv in servers:
            srv.start()
            # warm-up
            subprocess.run(bl.pinned([args.wrk, "-t1", "-c16", "-d1s",
                                      f"http://127.0.0.1:{srv.port}/"], bl.LOAD_CPU),
                           stdout=subprocess.DEVNULL)
        if args.peer == "no-metrics":
            threading.Thread(target=scrape_every_second, args=(zerg.port, stop_scraper),
                             daemon=True).start()
        for name, path, conns, depth in WORKLOADS:
            if only and name not in only:
                continue
            for r in range(args.rounds):
                for srv in servers:
                    srv.ensure()
                    res = run_load(args, srv, name, path, conns, depth)
                    results.setdefault((name, srv.name), []).append(res)
                    print(f"# {name} round {r + 1} {srv.name}: {res['rps']:.0f} req/s, "
                          f"{res['cpu_us']:.2f} us/req, load {res['load']:.0f}% "
                          f"{res['note']}", file=sys.stderr, flush=True)
            for srv in servers:  # syscalls: a separate run, kept out of the rounds
                srv.ensure()
                res = run_load(args, srv, name, path, conns, depth, count_syscalls=True)
                syscalls[(name, srv.name)] = res["sys"]
                print(f"# {name} syscall run {srv.name}: {res['sys']:.3f} syscalls/req",
                      file=sys.stderr, flush=True)
    finally:
        stop_scraper.set()
        for srv in servers + [backend]:
            srv.stop()
    lines = [f"{'workload':<20} {'zerg req/s':>11} {peer + ' req/s':>11} {'ratio':>6} "
             f"{'zerg us/req':>11} {peer + ' us/req':>12} {'zerg ms/GB':>10} "
             f"{peer + ' ms/GB':>11} {'zerg sc/req':>11} "
             f"{peer + ' sc/req':>12} {'load%':>5}"]
    for name, _, _, _ in WORKLOADS:
        if (name, "zerg") not in results:
            continue
        z, n = results[(name, "zerg")], results[(name, peer)]
        ratios = [a["rps"] / b["rps"] for a, b in zip(z, n) if b["rps"]]

        def med(rs, k):
            return bl.median(x[k] for x in rs)

        def per_gb(rs):
            """server CPU ms per GB of body (1e9 bytes), or '-'"""
            n = FILE_BYTES.get(name)
            return f"{med(rs, 'cpu_us') * 1e9 / n / 1e3:.1f}" if n else "-"

        lines.append(f"{name:<20} {med(z, 'rps'):>11.0f} {med(n, 'rps'):>11.0f} "
                     f"{bl.median(ratios) or 0:>6.2f} "
                     f"{med(z, 'cpu_us'):>11.2f} {med(n, 'cpu_us'):>12.2f} "
                     f"{per_gb(z):>10} {per_gb(n):>11} "
                     f"{syscalls[(name, 'zerg')]:>11.3f} {syscalls[(name, peer)]:>12.3f} "
                     f"{med(z, 'load'):>5.0f}")
    if args.limit:
        lines += limit_table(results, syscalls)
    bl.report("\n".join(lines), args.out)
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("# kept " + tmp, file=sys.stderr)


if __name__ == "__main__":
    main()
