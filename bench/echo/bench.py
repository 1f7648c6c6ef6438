#!/usr/bin/env python3
"""bench/echo/bench.py - zerg's echo module against a plain epoll echo server.

Usage: bench.py [BUILD_DIR] [--rounds N] [--duration S] [--workloads ...] ...

Follows bench/common/README's method: each server runs pinned to CPU 0 (zerg
with one worker, worker_cpu_affinity [0], itself under taskset -c 0; the
epoll server under taskset -c 0), the load generator (echo_load) on CPU 1.
For every workload (connections x message size) both servers get one
warm-up, then A B A B rounds of the same load; the server's CPU time
(utime+stime of its whole process tree, from /proc) is sampled before and
after each round. The table gives the medians over the rounds and is written
to bench/results/echo.txt (--out).

BUILD_DIR (default .) is a configured and built zerg tree: zerg, the modules
in build-modules/, and bench/echo/{epoll_echo,echo_load}. Missing bench
programs are compiled on the fly with cc -O2.

After the rounds, in separate runs (perf costs the server CPU, so it stays
out of the timed rounds): server syscalls per message (perf's
raw_syscalls:sys_enter; --no-syscalls skips it), and the share of each
server's CPU in the kernel's socket work (bench/common/cpu_split.py, tcp%),
with from zerg's share the floor: the CPU ratio zerg would reach if
everything else it does cost nothing (--no-split skips it).

Options take their defaults from the environment where one is named:
  --zerg, --modules (ZERG_BIN, ZERG_MODULES)  the zerg binary, echo.so's folder
  --epoll-echo, --echo-load (EPOLL_ECHO, ECHO_LOAD)  the two bench programs
  --rounds (ROUNDS, 3) --duration (DURATION, 5 s) --warmup (WARMUP, 1 s)
  --workloads (WORKLOADS, "64:64 64:16384 256:64 256:16384": CONNS:BYTES each)
  --load-engine (LOAD_ENGINE, uring)  how echo_load drives its sockets: uring
      (io_uring, batched: far cheaper per message, so one core loads the
      servers harder) or epoll (a send and a recv syscall per message)
  --extra-conf (ZERG_EXTRA_CONF)  YAML lines added at the top level of zerg's
      config (e.g. 'uring: {sqpoll: true}')
  --selftest (ECHO_BENCH_SELFTEST=1)  a second epoll_echo in zerg's place (to
      test this harness without a zerg build)
  --max-restarts (MAX_RESTARTS, 5)  a server killed by SIGKILL from outside
      (the machine is shared) is restarted and its run repeated, this many
      times at most; a crash of zerg (any other death) stops the benchmark

The machine is shared and other benchmarks pin to the same CPUs: check
`uptime` first. The table header records the load average; echo_load's own
CPU use (load%) well under 100 means it was starved of CPU 1 by other work.

Example: bench/echo/run.sh /tmp/build-bench --extra-conf 'uring: {send_zc_threshold: 0}'
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import benchlib as bl  # noqa: E402
import cpu_split  # noqa: E402

HOST = "127.0.0.1"


def die(msg):
    sys.exit(f"bench.py: {msg}")


class Server:
    """One of the two servers, restarted when killed from outside."""

    def __init__(self, name, argv, port, tmp, is_zerg):
        self.name, self.argv, self.port, self.tmp, self.is_zerg = name, argv, port, tmp, is_zerg
        self.proc = None
        self.log = os.path.join(tmp, name + ".log")

    def start(self):
        self.proc = bl.start(self.argv, bl.SERVER_CPU, stdout=open(self.log, "a"),
                             stderr=subprocess.STDOUT)
        if not bl.wait_port(HOST, self.port):
            self.failed("did not start")
        if self.is_zerg:
            time.sleep(0.3)  # let zerg's workers set up their rings behind the listening socket
        if self.proc.poll() is not None:
            self.failed("exited at start")
        bl.log(f"{self.name} pid {self.proc.pid} on {HOST}:{self.port} "
               f"(tree: {' '.join(map(str, bl.tree_pids(self.proc.pid)))})")

    def failed(self, what):
        with open(self.log) as f:
            out = f.read()[-2000:]
        err = os.path.join(self.tmp, "error.log")
        if self.is_zerg and os.path.exists(err):
            with open(err) as f:
                out += f.read()[-2000:]
        die(f"{self.name} (pid {self.proc.pid}) {what}; its output:\n{out}")

    def alive(self, run):
        """True when the server survived; restarts it (False: repeat the run)
        when it was SIGKILLed from outside, at most run.max_restarts times."""
        st = self.proc.poll()
        if st is None:
            return True
        if st == -signal.SIGKILL and run.restarts < run.max_restarts:
            run.restarts += 1
            bl.log(f"{self.name} (pid {self.proc.pid}) was killed by SIGKILL from outside: "
                   "restarting it, repeating the run")
            run.detail.append(f"{self.name} (pid {self.proc.pid}) killed by SIGKILL from "
                              "outside; restarted")
            bl.stop(self.proc, 2)  # its workers, if any outlived it
            self.start()
            return False
        self.failed(f"exited with status {st}")

    def stop(self):
        if self.proc:
            bl.stop(self.proc, 10)


def zerg_conf(args, tmp, port):
    path = os.path.join(tmp, "zerg.yaml")
    with open(path, "w") as f:
        f.write(f"""# written by bench/echo/bench.py
worker_processes: 1
worker_cpu_affinity: [{bl.SERVER_CPU}]
pid: {tmp}/zerg.pid
error_log: {{path: {tmp}/error.log, level: warn}}
modules_path: {args.modules}
load_modules: [echo]
{args.extra_conf}
servers:
  - listen: ["{HOST}:{port}"]
    module: echo
    echo: {{idle_timeout: 60s}}
""")
    return path


class Run:
    """The load runs of one benchmark: echo_load against a server, with the
    server's CPU time around it, repeated when the server was killed."""

    def __init__(self, args):
        self.args = args
        self.restarts = 0
        self.max_restarts = args.max_restarts
        self.detail = []

    def load_argv(self, srv, conns, nbytes, secs):
        return bl.pinned([self.args.echo_load, HOST, str(srv.port), str(conns), str(nbytes),
                          str(secs), self.args.load_engine], bl.LOAD_CPU)

    def load(self, srv, conns, nbytes, secs):
        """echo_load's key=value line, with us_per_msg: the server's CPU per message."""
        while True:
            t0 = bl.tree_ticks(srv.proc.pid)
            r = subprocess.run(self.load_argv(srv, conns, nbytes, secs), stdout=subprocess.PIPE,
                               text=True, timeout=secs + 60)
            ticks = bl.tree_ticks(srv.proc.pid) - t0
            if srv.alive(self):
                break
        line = r.stdout.strip()
        if r.returncode != 0:
            bl.log(f"echo_load against {srv.name} exited {r.returncode}: {line}")
        kv = bl.kv(line)
        msgs = int(kv.get("msgs", 0))
        kv["us_per_msg"] = bl.ticks_to_us(ticks) / msgs if msgs else None
        self.detail.append(f"server={srv.name} {line} server_ticks={ticks} "
                           f"server_us_per_msg={kv['us_per_msg']}")
        return kv

    def during(self, srv, conns, nbytes, probe):
        """probe(pids, window) over the middle `window` seconds of a load of
        --duration seconds; (probe's result, the load's msgs/s, window)."""
        d = self.args.duration
        window = d - 1 if d > 1.5 else d / 2
        while True:
            res, out = bl.during(
                lambda: subprocess.run(self.load_argv(srv, conns, nbytes, d),
                                       stdout=subprocess.PIPE, text=True, timeout=d + 60).stdout,
                lambda: probe(bl.tree_pids(srv.proc.pid), window), (d - window) / 2)
            if srv.alive(self):
                break
        rate = bl.kv(out or "").get("msgs_per_s")
        return res, float(rate) if rate else None, window

    def syscalls_per_msg(self, srv, conns, nbytes):
        n, rate, window = self.during(srv, conns, nbytes, bl.perf_syscalls)
        return n / (rate * window) if n is not None and rate else None

    def tcp_share(self, srv, conns, nbytes):
        r, _, _ = self.during(srv, conns, nbytes, cpu_split.split)
        return r[0] if r else None


def num(fmt, v):
    """fmt % v, or n/a at the same width when v is None."""
    return fmt % v if v is not None else "%*s" % (len(fmt % 0), "n/a")


def div(a, b):
    return a / b if a is not None and b else None


def fmt_bytes(n):
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def workload(run, a, b, conns, nbytes, perf_on):
    """One table row: A B A B rounds, then the perf runs; (row, saturated)."""
    args = run.args
    name = f"{conns}c x {fmt_bytes(nbytes)}"
    bl.log(f"workload {name}: warm-up")
    for srv in (a, b):
        run.load(srv, conns, nbytes, args.warmup)
    ra, rb = [], []
    for r in range(args.rounds):
        ra.append(run.load(a, conns, nbytes, args.duration))
        rb.append(run.load(b, conns, nbytes, args.duration))
        bl.log(f"  round {r + 1}: {a.name} {ra[-1].get('msgs_per_s')} msgs/s "
               f"{num('%.3f', ra[-1]['us_per_msg'])} us/msg | {b.name} "
               f"{rb[-1].get('msgs_per_s')} msgs/s {num('%.3f', rb[-1]['us_per_msg'])} us/msg")

    def med(rs, key):
        return bl.median(float(x[key]) if x.get(key) is not None else None for x in rs)

    ratio = bl.median(div(float(x.get("msgs_per_s", 0)), float(y.get("msgs_per_s", 0)))
                      for x, y in zip(ra, rb))
    cpu_ratio = bl.median(div(x["us_per_msg"], y["us_per_msg"]) for x, y in zip(ra, rb))
    saturated = any(float(x.get("load_cpu_pct", 0)) > 90 for x in ra + rb)
    a_sys = b_sys = a_tcp = b_tcp = floor = None
    if perf_on and not args.no_syscalls:
        a_sys = run.syscalls_per_msg(a, conns, nbytes)
        b_sys = run.syscalls_per_msg(b, conns, nbytes)
        bl.log(f"  syscalls/msg: {a.name} {num('%.2f', a_sys)} | {b.name} {num('%.2f', b_sys)}")
    if perf_on and not args.no_split:
        a_tcp = run.tcp_share(a, conns, nbytes)
        b_tcp = run.tcp_share(b, conns, nbytes)
        floor = bl.floor(a_tcp, med(ra, "us_per_msg"), med(rb, "us_per_msg"))
        bl.log(f"  socket work: {a.name} {num('%.4f', a_tcp)} | {b.name} {num('%.4f', b_tcp)} "
               f"of the CPU; floor {num('%.4f', floor)}")
    pct = (lambda s: s * 100 if s is not None else None)
    row = (f"{name:<14}{num(' %13.0f', med(ra, 'msgs_per_s'))}"
           f"{num(' %13.0f', med(rb, 'msgs_per_s'))}{num(' %6.2f', ratio)}"
           f"{num(' %12.2f', med(ra, 'us_per_msg'))}{num(' %12.2f', med(rb, 'us_per_msg'))}"
           f"{num(' %6.2f', cpu_ratio)}{num(' %13.2f', a_sys)}{num(' %13.2f', b_sys)}"
           f"{num(' %5.0f', med(ra, 'load_cpu_pct'))}/{num('%-3.0f', med(rb, 'load_cpu_pct'))}"
           f"{num(' %4.0f', pct(a_tcp))}/{num('%-3.0f', pct(b_tcp))}{num(' %6.2f', floor)}")
    return row, saturated


def header(args, a, loadavg_start, version):
    n, u = a.name, os.uname()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join([
        f"# TCP echo: {n} vs single-thread epoll echo server ({when})",
        f"# {u.sysname} {u.release}, {os.cpu_count()} CPUs; servers on CPU {bl.SERVER_CPU}, "
        f"echo_load ({args.load_engine}) on CPU {bl.LOAD_CPU};",
        f"# load average before/after: {loadavg_start} / {bl.loadavg()} "
        "(other work on the machine adds noise)",
        f"# {n}: {version}",
        f"# {args.rounds} rounds x {args.duration:g}s per server and workload, alternating, "
        f"after a {args.warmup:g}s warm-up;",
        "# every column is the median over the rounds (ratios: median of the per-round ratios).",
        "# us/msg = server CPU (utime+stime of its process tree) per echoed message;",
        f"# CPU ratio < 1: {n} spends less CPU per message. sys/msg: server syscalls",
        "# per message (perf raw_syscalls:sys_enter, separate run). load%: echo_load's own",
        f"# CPU use ({n}/epoll runs); near 100 means the load generator is the bottleneck.",
        "# tcp%: the share of each server's CPU in the kernel's socket work (tcp_sendmsg,",
        "# tcp_recvmsg, inet_accept and inet_release call stacks: copies, TCP/IP, the peer's",
        "# receive path that loopback runs in the sender), sampled with perf in a separate",
        f"# run. floor: {n}'s tcp% x its us/msg over epoll's us/msg, the CPU ratio {n}",
        "# would reach if everything else it does (event loop, io_uring, user space) cost",
        "# nothing.",
        "%-14s %13s %13s %6s %12s %12s %6s %13s %13s %9s %8s %6s" % (
            "workload", f"{n} msgs/s", "epoll msgs/s", "ratio", f"{n} us/msg", "epoll us/msg",
            "CPU r", f"{n} sys/msg", "epoll sys/msg", "load%", "tcp%", "floor")])


def footer(run, tmp, saturated):
    lines = []
    if run.restarts:
        lines.append(f"# a server was killed from outside (SIGKILL) {run.restarts} time(s) and "
                     "restarted; those runs were repeated")
    err = os.path.join(tmp, "error.log")
    if os.path.exists(err) and os.path.getsize(err):
        with open(err) as f:
            log = f.read().splitlines()
        lines.append(f"# zerg's error log (level warn) has {len(log)} lines; the first:")
        lines += ["#   " + x[:160] for x in log[:3]]
    if saturated:
        lines.append("# echo_load used over 90% of its CPU in some runs: there msgs/s is bounded "
                     "by the\n# load generator (one core) as much as by the server; compare "
                     "us/msg (CPU r) there.")
    return lines


def parse_args():
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default=".")
    ap.add_argument("--zerg", default=env("ZERG_BIN"))
    ap.add_argument("--modules", default=env("ZERG_MODULES"))
    ap.add_argument("--epoll-echo", default=env("EPOLL_ECHO"))
    ap.add_argument("--echo-load", default=env("ECHO_LOAD"))
    ap.add_argument("--rounds", type=int, default=int(env("ROUNDS", "3")))
    ap.add_argument("--duration", type=float, default=float(env("DURATION", "5")))
    ap.add_argument("--warmup", type=float, default=float(env("WARMUP", "1")))
    ap.add_argument("--workloads", default=env("WORKLOADS", "64:64 64:16384 256:64 256:16384"))
    ap.add_argument("--load-engine", choices=("uring", "epoll"),
                    default=env("LOAD_ENGINE", "uring"))
    ap.add_argument("--no-syscalls", action="store_true", default=env("SYSCALLS", "1") != "1")
    ap.add_argument("--no-split", action="store_true", default=env("SPLIT", "1") != "1")
    ap.add_argument("--extra-conf", default=env("ZERG_EXTRA_CONF", ""))
    ap.add_argument("--out", default=env("OUT", os.path.join(SRCDIR, "bench", "results",
                                                             "echo.txt")))
    ap.add_argument("--selftest", action="store_true", default=env("ECHO_BENCH_SELFTEST") == "1")
    ap.add_argument("--max-restarts", type=int, default=int(env("MAX_RESTARTS", "5")))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    args.zerg = args.zerg or os.path.join(build, "zerg")
    args.modules = os.path.abspath(args.modules or os.path.join(build, "build-modules"))
    return args, build


def main():
    args, build = parse_args()
    tmp = tempfile.mkdtemp(prefix="zerg-bench-echo.")
    args.epoll_echo = bl.program(args.epoll_echo or os.path.join(build, "bench/echo/epoll_echo"),
                                 os.path.join(HERE, "epoll_echo.c"), tmp)
    args.echo_load = bl.program(args.echo_load or os.path.join(build, "bench/echo/echo_load"),
                                os.path.join(HERE, "echo_load.c"), tmp)
    zport, eport = bl.free_ports(2)
    if args.selftest:
        a = Server("epollA", [args.epoll_echo, HOST, str(zport)], zport, tmp, False)
        version = "selftest: epoll_echo in zerg's place"
    else:
        if not os.access(args.zerg, os.X_OK):
            die(f"no zerg binary at {args.zerg} (build zerg, or pass --zerg; --selftest tests "
                "the harness alone)")
        if not os.path.exists(os.path.join(args.modules, "echo.so")):
            die(f"no echo.so in {args.modules} (pass --modules)")
        a = Server("zerg", [args.zerg, "-c", zerg_conf(args, tmp, zport)], zport, tmp, True)
        version = subprocess.run([args.zerg, "-v"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True).stdout.split("\n")[0]
    b = Server("epoll", [args.epoll_echo, HOST, str(eport)], eport, tmp, False)
    if (os.cpu_count() or 1) < 2:
        bl.log("warning: fewer than 2 CPUs; server and load share one")
    run = Run(args)
    rows, saturated = [], False
    try:
        a.start()
        b.start()
        loadavg_start = bl.loadavg()
        perf_on = (not args.no_syscalls or not args.no_split) and bl.perf_ok()
        if not perf_on and (not args.no_syscalls or not args.no_split):
            bl.log("perf unusable: no syscall counts, no CPU split")
        for wl in args.workloads.split():
            conns, nbytes = (int(x) for x in wl.split(":"))
            row, sat = workload(run, a, b, conns, nbytes, perf_on)
            rows.append(row)
            saturated |= sat
    finally:
        a.stop()
        b.stop()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    bl.report("\n".join([header(args, a, loadavg_start, version)] + rows +
                        footer(run, tmp, saturated)), args.out)
    with open(args.out, "a") as f:
        f.write(f"# per-run detail (server A={a.name} B=epoll; echo_load output + server CPU):\n")
        f.writelines(f"#   {x}\n" for x in run.detail)
    bl.log(f"table written to {args.out}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
