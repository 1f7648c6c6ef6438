#!/usr/bin/env python3
"""cpu_split.py - how much of a server's CPU time is the kernel's socket work.

  cpu_split.py SECONDS PID...   prints "tcp_share=0.8123 samples=4810"

Samples the given processes' call stacks with perf (cpu-clock, 997 Hz) for
SECONDS and counts the samples whose stack holds tcp_sendmsg, tcp_recvmsg,
inet_accept or inet_release: copying the bytes, TCP/IP, and on loopback the
peer's receive path and its wake-up, which the kernel runs in the sender's
context, and accepting and closing connections. Every server that moves
the same bytes over the same connections does that work;
what is left (the event loop, syscall entry, epoll or io_uring, user space,
sleeping and waking) is what one server can do better than another.

So if server A spends a share s of its CPU per operation there, A's CPU per
operation can never fall below s * (A's CPU per operation), and the best
CPU ratio A could reach against a peer B is that figure over B's: the
benchmarks print it as "floor".

Servers that terminate TLS or speak HTTP/2 through the same libraries
also do the same library work: OpenSSL's handshakes and records, nghttp2's
frames. `--libs` adds it to the floor: the stacks are unwound with DWARF
(OpenSSL is built without frame pointers) and each sample outside the
socket work goes to the first library frame from its leaf (glibc, the
kernel and the vDSO skipped: a malloc OpenSSL calls is OpenSSL's work), the
rest to the server's own code. With the libraries a server calls at least
as often as its peer (one record each way per request, the same handshake
messages), its floor is socket plus library share times its CPU per
operation.

`--libs` also counts the kernel's side of the server's event loop, outside
the socket work: the samples under io_uring_enter (its waits, task work and
submissions) or epoll_wait, as evt. An io_uring server cannot go without
it, so socket plus library plus evt share times its CPU per operation is
the ratio it would reach if its user-space code cost nothing.

  cpu_split.py --libs SECONDS PID...   prints "tcp_share=... libssl=... evt=... samples=N"

Run it in a separate load, never in the timed rounds: sampling call stacks
costs the server CPU. Exits 1 (and prints nothing) when perf cannot sample
the processes. perf runs on the load CPU (BENCH_LOAD_CPU), as the syscall
counts do. Also importable: split(pids, seconds) -> (share, samples) or
None; split_libs(pids, seconds) -> ({"tcp": share, "libssl": share, ...},
samples) or None; classify(frames) and shares_of(perf script's text), the
rules split_libs applies (tests/integration/test_cpu_split.py checks them).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import benchlib

# sending and receiving, and accepting and closing TCP connections
SOCKET_WORK = ("tcp_sendmsg", "tcp_recvmsg", "inet_accept", "inet_release")
FREQ = 997
# the shared libraries whose work split_libs counts: name -> file name prefixes
LIBS = {"libssl": ("libssl.so", "libcrypto.so"), "nghttp2": ("libnghttp2.so",)}
# frames a sample passes through on the way to the code that asked for them
PASS_THROUGH = ("libc.so", "ld-linux", "[kernel.kallsyms]", "[vdso]", "[unknown]")
# the system calls (and task work) an event loop waits and submits in
EVENT_LOOP = ("__do_sys_io_uring_enter", "__x64_sys_io_uring_enter", "tctx_task_work",
              "do_epoll_wait", "__x64_sys_epoll_wait", "__x64_sys_epoll_pwait")


def _stacks(script_out):
    """Yields each sample's frames, leaf first, from perf script's text: what
    follows each address ("sym" with -F ip,sym; "sym (dso)" with ip,sym,dso)."""
    for block in script_out.split("\n\n"):
        frames = [line.split(None, 1)[-1].strip() for line in block.splitlines() if line.strip()]
        if frames:
            yield frames


def _record(pids, seconds, callgraph, fields):
    """perf script's text of `seconds` of the processes' stacks, or None."""
    with tempfile.TemporaryDirectory(prefix="cpu-split.") as tmp:
        data = os.path.join(tmp, "perf.data")
        rec = subprocess.run(benchlib.pinned(
            ["perf", "record", "-q", "-F", str(FREQ), "-e", "cpu-clock", *callgraph, "-o", data,
             "-p", ",".join(str(p) for p in pids), "--", "sleep", str(seconds)],
            benchlib.LOAD_CPU),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             timeout=seconds + 60)
        if rec.returncode != 0 or not os.path.exists(data):
            return None
        return subprocess.run(["perf", "script", "-i", data, "-F", fields],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              timeout=600).stdout


def _dso(frame):
    """The file name of a `perf script -F ip,sym,dso` frame ("" if none)."""
    at = frame.rfind(" (")
    return os.path.basename(frame[at + 2:].rstrip(")")) if at >= 0 else ""


def _owner(frames):
    """The LIBS name whose code a sample's stack (leaf first) works for, or
    None for the server's own code."""
    for f in frames:
        if f.endswith("(inlined)"):
            continue  # its function's own frame follows, with the file
        dso = _dso(f)
        if not dso or dso.startswith(PASS_THROUGH):
            continue
        for name, prefixes in LIBS.items():
            if dso.startswith(prefixes):
                return name
        return None
    return None


def split_libs(pids, seconds):
    """({"tcp": share of the socket work, LIBS name: share, ..., "evt": share
    of the event loop's kernel side}, samples) over `seconds`; None when perf
    is missing, refuses, or took no sample."""
    if not pids or not shutil.which("perf"):
        return None
    out = _record(pids, seconds, ["--call-graph", "dwarf,8192"], "ip,sym,dso")
    return shares_of(out or "")


def classify(frames):
    """Where a sample (its `perf script -F ip,sym,dso` frames, leaf first)
    goes: "tcp", a LIBS name, "evt", or None for the server's own code."""
    names = [f.split(" (")[0] for f in frames]
    if any(n in SOCKET_WORK for n in names):
        return "tcp"
    owner = _owner(frames)
    if owner:
        return owner
    return "evt" if any(n in EVENT_LOOP for n in names) else None


def shares_of(script_out):
    """split_libs' answer for perf script's text: ({"tcp": share, LIBS name:
    share, ..., "evt": share}, samples), or None without samples."""
    shares = dict.fromkeys(["tcp", *LIBS, "evt"], 0)
    samples = 0
    for frames in _stacks(script_out):
        samples += 1
        where = classify(frames)
        if where:
            shares[where] += 1
    if not samples:
        return None
    return {k: v / samples for k, v in shares.items()}, samples


def describe(shares):
    """split_libs' shares as a log line: "tcp 39.0% libssl 22.5% ..."."""
    return " ".join(f"{k} {100 * v:.1f}%" for k, v in shares.items())


def split(pids, seconds):
    """(share of samples under SOCKET_WORK, samples) over `seconds`; None when
    perf is missing, refuses, or took no sample."""
    if not pids or not shutil.which("perf"):
        return None
    # frame pointers and no file names: cheaper, and enough for the socket
    # work, which classify() finds by name before it looks at any file
    r = shares_of(_record(pids, seconds, ["-g"], "ip,sym") or "")
    return (r[0]["tcp"], r[1]) if r else None


def main(argv):
    libs = len(argv) > 1 and argv[1] == "--libs"
    argv = argv[:1] + argv[2:] if libs else argv
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    pids, seconds = [int(p) for p in argv[2:]], float(argv[1])
    r = split_libs(pids, seconds) if libs else split(pids, seconds)
    if r is None:
        return 1
    if libs:
        shares = " ".join(f"{'tcp_share' if k == 'tcp' else k}={v:.4f}" for k, v in r[0].items())
        print(f"{shares} samples={r[1]}")
    else:
        print(f"tcp_share={r[0]:.4f} samples={r[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
