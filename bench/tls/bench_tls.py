#!/usr/bin/env python3
"""bench/tls/bench_tls.py - zerg's TLS termination against nginx 1.22 (one
worker) and, in front of redis, HAProxy 2.6 (nbthread 1), by bench/common's
method: each server on CPU 0, the load on CPU 1, rounds alternating zerg,
peer, zerg, peer...; every row prints throughput and server CPU per
operation (utime+stime of the server's process tree), the zerg/peer ratios
(each round's figure over the peer's in that round, then the median) and
issue 20's target. Every server gets the same certificates (made here with
the openssl CLI: RSA-2048 and ECDSA P-256, self-signed for localhost),
TLS 1.3 only and TLS_AES_128_GCM_SHA256 only; X25519 is both sides' default
group. The servers are bench/http's zerg and nginx and bench/proxy's
HAProxy, their configurations given a TLS listener here. Loopback only,
bounded in time.

Rows:
  keepalive     wrk -t1 -c64, `return 200 "Hello, World!"` (ECDSA)
  full-rsa      a full handshake per request ("Connection: close"), RSA-2048
                (each server has both certificates; the client's signature
                algorithms pick one)
  full-ecdsa    the same with ECDSA P-256 (here the client, which verifies,
                works harder than the server: compare CPU per handshake)
  resumed       TLS 1.3 resumption of the previous connection's ticket
                (ECDSA); the row says how many handshakes really resumed
  static-1MiB   wrk -t1 -c16, a 1 MiB file: MB/s and server CPU ms per GB
  redis-proxy   redis-benchmark --tls GET (50 clients) through zerg's proxy
                module with tls: vs HAProxy's `bind ... ssl crt`

Load generators: wrk for the keep-alive and file rows: it speaks TLS through
the system's OpenSSL in one epoll thread, and it is what bench/http uses, so
the TLS rows compare with its plain-text ones (same client, same connection
counts). h2load --h1 would do as well: both spent about 10-14 µs of client
CPU per TLS request on this kind of machine.
Neither wrk nor h2load resumes sessions, so the handshake rows use
bench/tls/tls_handshake (OpenSSL, PROCS processes of sequential connections,
a full handshake each or resuming the last session; it counts "Reused").

  python3 bench/tls/bench_tls.py --zerg BUILD/zerg --modules BUILD/build-modules
        [--rounds 3] [--seconds 5] [--only keepalive,resumed,...] [--quick]
        [--out FILE] [--tls-handshake BUILD/bench/tls/tls_handshake]
        [--zerg-base OTHER/zerg]   # a second build in the same rounds (A/B)

After each row's timed rounds a separate load of it samples zerg's and the
peer's call stacks with perf (3 s each, bench/common/cpu_split.py --libs)
for the tcp%, ssl% and floor columns: the shares of their CPU in the
kernel's socket work and in OpenSSL, and the CPU ratio zerg would reach if
its own code cost nothing (--no-split leaves them out).

--quick: one round of 2 s per row (a check that the harness works, not a
figure; no sampling). Needs wrk, nginx, haproxy, redis-server, redis-benchmark (built with
TLS, as Debian's is), openssl and a C compiler with libssl-dev when
tls_handshake is not built.
"""
import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import benchlib as bl  # noqa: E402
import cpu_split  # noqa: E402


def _bench(name, path):
    """Another bench's script as a module: its servers' configurations, wrk
    parser and clocks are reused here."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "..", path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


hb = _bench("http_bench", "http/bench.py")
bp = _bench("proxy_bench", "proxy/bench_proxy.py")

SUITE = "TLS_AES_128_GCM_SHA256"
MIB = 1 << 20
SPLIT_SECONDS = 3  # of perf sampling per row and server, outside the timed rounds

# name, what the target compares, its bound (zerg/peer), the peer
ROWS = [
    ("keepalive", "CPU/req", 0.8, "nginx"),
    ("full-rsa", "CPU/handshake", 1.0, "nginx"),
    ("full-ecdsa", "CPU/handshake", 1.0, "nginx"),
    ("resumed", "CPU/handshake", 0.9, "nginx"),
    ("static-1MiB", "CPU/GB", 1.0, "nginx"),
    ("redis-proxy", "CPU/req", 0.8, "haproxy"),
]


def make_certs(d):
    """Self-signed RSA-2048 and ECDSA P-256 leaves for localhost, key and
    certificate apart (zerg, nginx) and together (HAProxy's crt)."""
    for name, key in (("rsa", ["rsa:2048"]),
                      ("ecdsa", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        base = os.path.join(d, name)
        subprocess.run(["openssl", "req", "-x509", "-newkey", *key, "-nodes", "-keyout",
                        base + ".key", "-out", base + ".pem", "-days", "30", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(base + ".key", 0o600)
        with open(base + ".both.pem", "w") as f:
            f.write(open(base + ".pem").read() + open(base + ".key").read())


class Server:
    """One server process pinned to the server CPU, with its ports."""

    def __init__(self, name, argv, ports, tmp, stop_sig=signal.SIGTERM):
        self.name, self.argv, self.ports, self.tmp = name, argv, ports, tmp
        self.stop_sig, self.proc = stop_sig, None

    def start(self):
        self.proc = bl.start(self.argv, bl.SERVER_CPU, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.tmp, self.name + ".out"), "w"))
        for port in self.ports.values():
            bl.need_port("127.0.0.1", port)
        time.sleep(0.3)

    def stop(self):
        if self.proc:
            bl.stop(self.proc, 10, self.stop_sig)


def edit(path, *pairs):
    """Rewrites the file at path with each (old, new) replaced once; old
    must be there (the peer configurations come from the other benches)."""
    with open(path) as f:
        text = f.read()
    for old, new in pairs:
        if old not in text:
            raise RuntimeError(f"{path}: no {old!r} to turn into TLS")
        text = text.replace(old, new, 1)
    with open(path, "w") as f:
        f.write(text)


def make_zerg(args, tmp, redis_port, name="zerg"):
    """bench/http's zerg (one worker; its proxy locations point at redis and
    stay unused) with a tls: key, plus a proxy block terminating TLS in
    front of redis. name "zerg-base": the --zerg-base build."""
    args = argparse.Namespace(**vars(args), zc=False)
    if name == "zerg-base":
        args.zerg, args.modules = args.zerg_base, args.modules_base
    http = hb.make_zerg(args, tmp, os.path.join(tmp, "static"), redis_port, name)
    proxy_port = bl.free_port()
    tls = (f"    tls:\n      certificates:\n" + "".join(
        f"        - {{ certificate: {tmp}/{k}.pem, key: {tmp}/{k}.key }}\n"
        for k in ("ecdsa", "rsa")) + f"      protocols: [TLSv1.3]\n      ciphersuites: {SUITE}\n")
    conf = http.argv[-1]
    edit(conf, ("load_modules: [http]", "load_modules: [http, proxy]"),
         ("    module: http\n", "    module: http\n" + tls))
    with open(conf, "a") as f:
        f.write(f"""  - listen: ["127.0.0.1:{proxy_port}"]
    module: proxy
{tls}    proxy:
      upstream: {{ servers: ["127.0.0.1:{redis_port}"] }}
      idle_timeout: 10m
""")
    return Server(name, http.argv, {"http": http.port, "redis": proxy_port}, tmp)


def make_nginx(args, tmp):
    """bench/http's nginx (one worker) with both certificates, TLS 1.3."""
    n = hb.make_nginx(args, tmp, os.path.join(tmp, "static"))
    certs = "".join(f"        ssl_certificate {tmp}/{k}.pem; ssl_certificate_key {tmp}/{k}.key;\n"
                    for k in ("ecdsa", "rsa"))
    edit(n.argv[-1], (f"listen 127.0.0.1:{n.port} backlog=4096;",
                      f"listen 127.0.0.1:{n.port} ssl backlog=4096;\n{certs}"
                      f"        ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites {SUITE};"))
    return Server("nginx", n.argv, {"http": n.port}, tmp, signal.SIGQUIT)


def make_haproxy(args, tmp, redis_port):
    """bench/proxy's HAProxy (mode tcp, one thread) binding with ssl crt."""
    port = bl.free_port()
    argv = bp.HAProxy("haproxy", tmp, port, redis_port, args).command()
    edit(argv[-1], ("global\n", f"global\n    ssl-default-bind-ciphersuites {SUITE}\n"
                                "    ssl-default-bind-options ssl-min-ver TLSv1.3\n"),
         (f"bind 127.0.0.1:{port}", f"bind 127.0.0.1:{port} ssl crt {tmp}/ecdsa.both.pem"))
    return Server("haproxy", argv, {"redis": port}, tmp)


# ---- the loads: each returns (operations, bytes, note) ----

def wrk_load(args, port, path, conns, secs):
    r = subprocess.run(bl.pinned([args.wrk, "-t1", f"-c{conns}", f"-d{secs}s",
                                  f"https://127.0.0.1:{port}{path}"], bl.LOAD_CPU),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=secs + 60)
    reqs, _, note = hb.wrk_result(r.stdout.decode(errors="replace"))
    if not reqs:
        raise RuntimeError(r.stdout.decode(errors="replace").strip()[-300:])
    return reqs, 0, note


def handshake_load(args, port, sigalgs, mode, secs):
    """tls_handshake's sequential connections; sigalgs picks the certificate."""
    r = subprocess.run(bl.pinned([args.tls_handshake, "127.0.0.1", str(port), str(secs),
                                  str(args.procs), mode, "/", SUITE, sigalgs], bl.LOAD_CPU),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=secs + 60)
    kv = bl.kv(r.stdout.decode(errors="replace"))
    n = int(kv.get("handshakes", 0))
    if not n:
        raise RuntimeError(r.stdout.decode(errors="replace").strip()[-300:])
    note = f"errors {kv['errors']}" if kv.get("errors", "0") != "0" else ""
    return n, 0, note, int(kv["reused"])


def redis_load(port, requests):
    r = subprocess.run(bl.pinned(["redis-benchmark", "--tls", "--insecure", "-h", "127.0.0.1",
                                  "-p", str(port), "-c", "50", "-n", str(requests), "-t", "get",
                                  "-q", "--csv"], bl.LOAD_CPU),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    if r.returncode != 0 or b'"GET"' not in r.stdout:
        raise RuntimeError(r.stdout.decode(errors="replace").strip()[-300:])
    return requests, 0, ""


def row_load(args, row, srv, secs):
    """The row's load against srv: (ops, bytes, note)."""
    if row == "keepalive":
        return wrk_load(args, srv.ports["http"], "/", 64, secs)
    if row == "static-1MiB":
        n, _, note = wrk_load(args, srv.ports["http"], "/static/1m.bin", 16, secs)
        return n, n * MIB, note
    if row == "redis-proxy":
        return redis_load(srv.ports["redis"], args.requests)
    sigalgs = "rsa_pss_rsae_sha256" if row == "full-rsa" else "ECDSA+SHA256"
    n, _, note, reused = handshake_load(args, srv.ports["http"], sigalgs,
                                        "resume" if row == "resumed" else "full", secs)
    if row == "resumed":
        srv.reused = getattr(srv, "reused", (0, 0))
        srv.reused = (srv.reused[0] + reused, srv.reused[1] + n)
    return n, 0, note


def measure(args, row, srv):
    """One timed run: ops/s, server µs per op (per GB for the file row)."""
    (u0, s0), l0 = bl.tree_ticks_split(srv.proc.pid), hb.children_cpu_s()
    t0 = time.monotonic()
    ops, nbytes, note = row_load(args, row, srv, args.seconds)
    dt = time.monotonic() - t0
    u1, s1 = bl.tree_ticks_split(srv.proc.pid)
    us = bl.ticks_to_us(u1 - u0 + s1 - s0)
    return {"tput": nbytes / dt / 1e6 if nbytes else ops / dt,
            "sys": 100.0 * (s1 - s0) / max(1, u1 - u0 + s1 - s0),
            "cost": us / 1e3 / (nbytes / 1e9) if nbytes else us / ops,
            "load": 100.0 * (hb.children_cpu_s() - l0) / dt, "note": note}


def run_row(args, row, servers, results):
    for srv in servers:  # warm-up, untimed
        try:
            row_load(args, row, srv, 1)
        except RuntimeError as e:
            bl.log(f"warm-up {row} {srv.name} failed: {e}")
    for rnd in range(args.rounds):
        for srv in servers:
            try:
                r = measure(args, row, srv)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                bl.log(f"{row} round {rnd + 1} {srv.name} FAILED: {e}")
                continue
            r["round"] = rnd
            results.setdefault((row, srv.name), []).append(r)
            bl.log(f"{row} round {rnd + 1} {srv.name}: {r['tput']:.0f}/s {r['cost']:.2f} "
                   f"load {r['load']:.0f}% {r['note']}")


def work_split(args, row, servers, results):
    """Each server's CPU split into the kernel's socket work, OpenSSL's and
    its own code (bench/common/cpu_split.py --libs), sampled in a separate
    load of the row, out of the timed rounds."""
    for srv in servers:
        r, done = bl.during(lambda: row_load(args, row, srv, SPLIT_SECONDS + 1),
                            lambda: cpu_split.split_libs(bl.tree_pids(srv.proc.pid),
                                                         SPLIT_SECONDS), 0.5)
        if r and done:
            results[(row, srv.name, "split")] = r[0]
            bl.log(f"{row} split {srv.name}: {cpu_split.describe(r[0])}")


def split_cells(results, row, peer, zcost, pcost):
    """The tcp% and ssl% cells (zerg/peer) and the floor: the CPU ratio zerg
    would reach against the peer if its own code cost nothing."""
    z, p = results.get((row, "zerg", "split")), results.get((row, peer, "split"))
    pct = lambda d, k: f"{100 * d[k]:.0f}" if d else "-"  # noqa: E731
    fl = bl.floor(z["tcp"] + z["libssl"], zcost, pcost) if z else None
    tcp, ssl = pct(z, "tcp") + "/" + pct(p, "tcp"), pct(z, "libssl") + "/" + pct(p, "libssl")
    return f"{tcp:>7} {ssl:>7} {f'{fl:.2f}x' if fl is not None else '-':>6}"


def resumed_note(srv):
    """How many of srv's handshakes resumed (warm-ups included): a row of
    full handshakes in disguise says so."""
    reused, n = getattr(srv, "reused", (0, 0))
    if not n:
        return ""
    flag = "" if reused >= 0.9 * n else " NOT RESUMED: full handshakes"
    return f"{srv.name} reused {reused}/{n}{flag}"


def table(args, results, servers, versus=None):
    """The rows: zerg against each row's peer and target, or with versus
    against that server (zerg-base) and no target."""
    lines = [f"# bench/tls, load average {bl.loadavg()}, {args.rounds} round(s) of "
             f"{args.seconds}s", f"{'row':12} {'peer':9} {'zerg/s':>9} {'peer/s':>9} "
             f"{'tput':>6} {'zerg cpu':>9} {'peer cpu':>9} {'cpu':>6} {'unit':>10} "
             f"{'target':>8} {'load%':>5} {'sys%':>7} {'tcp%':>7} {'ssl%':>7} {'floor':>6}  notes"]
    for row, what, bound, peer in ROWS:
        if versus:
            what, bound, peer = "", None, versus
        z, p = results.get((row, "zerg")), results.get((row, peer))
        if not z or not p:
            continue
        base = {r["round"]: r for r in p}
        pairs = [(r["tput"] / base[r["round"]]["tput"], r["cost"] / base[r["round"]]["cost"])
                 for r in z if r["round"] in base]
        tput_r, cpu_r = bl.median(t for t, _ in pairs), bl.median(c for _, c in pairs)
        verdict = "" if bound is None else "met" if cpu_r is not None and cpu_r <= bound \
            else "MISSED"
        unit = "ms/GB" if row == "static-1MiB" else "µs/op"
        note = "; ".join(sorted({r["note"] for r in z + p if r["note"]}))
        if row == "resumed":
            note = "; ".join(filter(None, [note] + [resumed_note(s) for s in servers]))
        target = "-" if bound is None else f"<={bound}x"
        cells = (f"{'-':>7} {'-':>7} {'-':>6}" if versus else
                 split_cells(results, row, peer, bl.median(r["cost"] for r in z),
                             bl.median(r["cost"] for r in p)))
        lines.append(f"{row:12} {peer:9} {bl.median(r['tput'] for r in z):9.0f} "
                     f"{bl.median(r['tput'] for r in p):9.0f} {tput_r or 0:5.2f}x "
                     f"{bl.median(r['cost'] for r in z):9.2f} "
                     f"{bl.median(r['cost'] for r in p):9.2f} {cpu_r or 0:5.2f}x {unit:>10} "
                     f"{target:>8} {bl.median(r['load'] for r in z):5.0f} "
                     f"{bl.median(r['sys'] for r in z):3.0f}/{bl.median(r['sys'] for r in p):<3.0f} "
                     f"{cells}  "
                     f"{' '.join(filter(None, (what, verdict, note)))}")
    lines.append("(static-1MiB: throughput in MB/s; the others in operations/s. cpu: server "
                 "utime+stime over its process tree per operation; ratios: the median of each "
                 "round's zerg figure over the peer's in the same round; load%: the load "
                 "generator's CPU over zerg's runs, near 100 means the client bounds the rate; sys%: the "
                 "share of zerg's/the peer's CPU spent in the kernel, stime over utime+stime; tcp%, "
                 "ssl%: the shares of zerg's/the peer's CPU in the kernel's socket work and in "
                 "OpenSSL (malloc and page faults it causes included), sampled with perf in a "
                 "separate load (bench/common/cpu_split.py --libs); floor: zerg's tcp% + ssl% "
                 "times its CPU per operation over the peer's, the ratio zerg would reach if "
                 "its own code cost nothing; - where not sampled)")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    hb.server_args(ap)
    ap.add_argument("--tls-handshake", default=os.environ.get("TLS_HANDSHAKE"),
                    help="bench/tls's tls_handshake (default: BUILD/bench/tls/tls_handshake "
                         "next to --zerg, else compiled from bench/tls/tls_handshake.c)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200000, help="redis-benchmark's -n")
    ap.add_argument("--procs", type=int, default=8,
                    help="tls_handshake's processes (connections at once)")
    ap.add_argument("--only", default=",".join(r[0] for r in ROWS))
    ap.add_argument("--quick", action="store_true", help="one round of 2 s: a harness check")
    ap.add_argument("--no-split", action="store_true",
                    help="no perf sampling for the tcp%%, ssl%% and floor columns")
    ap.add_argument("--zerg-base", help="a second zerg build in the same rounds, compared with "
                                        "zerg in a second table (an A/B of two builds)")
    ap.add_argument("--modules-base", help="its modules (default: build-modules beside it)")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.requests = 1, 2, 20000
    args.zerg, args.modules = os.path.abspath(args.zerg), os.path.abspath(args.modules)
    if args.zerg_base:
        args.zerg_base = os.path.abspath(args.zerg_base)
        args.modules_base = os.path.abspath(args.modules_base or os.path.join(
            os.path.dirname(args.zerg_base), "build-modules"))
    if not os.path.exists(args.zerg):
        sys.exit(f"no zerg binary at {args.zerg} (run from the build folder or pass --zerg)")
    only = args.only.split(",")
    tmp = tempfile.mkdtemp(prefix="zg-bench-tls-")
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    args.tls_handshake = program(args, tmp)
    make_certs(tmp)
    os.makedirs(os.path.join(tmp, "static"))
    with open(os.path.join(tmp, "static", "1m.bin"), "wb") as f:
        f.write(os.urandom(MIB))
    os.chmod(os.path.join(tmp, "static", "1m.bin"), 0o644)
    redis_port = bl.free_port()
    redis = bl.start(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly",
                      "no", "--bind", "127.0.0.1"], bl.LOAD_CPU, stdout=subprocess.DEVNULL)
    servers = [make_zerg(args, tmp, redis_port), make_nginx(args, tmp),
               make_haproxy(args, tmp, redis_port)]
    if args.zerg_base:
        servers.append(make_zerg(args, tmp, redis_port, "zerg-base"))
    results = {}
    try:
        bl.need_port("127.0.0.1", redis_port)
        for srv in servers:
            srv.start()
        for row, _, _, peer in ROWS:
            if row in only:
                run_row(args, row, [s for s in servers if s.name in ("zerg", "zerg-base", peer)],
                        results)
                if not args.no_split and not args.quick:
                    work_split(args, row, [s for s in servers if s.name in ("zerg", peer)],
                               results)
    finally:
        for srv in servers:
            srv.stop()
        bl.stop(redis)
    text = table(args, results, servers)
    if args.zerg_base:
        text += "\n\n" + table(args, results, servers, "zerg-base")
    bl.report(text, args.out)
    if os.environ.get("BENCH_KEEP"):
        bl.log("kept " + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def program(args, tmp):
    """tls_handshake: the given or built one, else compiled here."""
    built = os.path.join(os.path.dirname(args.zerg), "bench", "tls", "tls_handshake")
    for path in (args.tls_handshake, built):
        if path and os.access(path, os.X_OK):
            return path
    out = os.path.join(tmp, "tls_handshake")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", out,
                    os.path.join(HERE, "tls_handshake.c"), "-lssl", "-lcrypto"], check=True)
    return out


if __name__ == "__main__":
    main()
