#!/usr/bin/env python3
"""cpu_split.py - how much of a server's CPU time is the kernel's socket work.

  cpu_split.py SECONDS PID...   prints "tcp_share=0.8123 samples=4810"

Samples the given processes' call stacks with perf (cpu-clock, 997 Hz) for
SECONDS and counts the samples whose stack holds tcp_sendmsg or
tcp_recvmsg: copying the bytes, TCP/IP, and on loopback the peer's receive
path and its wake-up, which the kernel runs in the sender's context. Every
server that moves the same bytes over the same connections does that work;
what is left (the event loop, syscall entry, epoll or io_uring, user space,
sleeping and waking) is what one server can do better than another.

So if server A spends a share s of its CPU per operation there, A's CPU per
operation can never fall below s * (A's CPU per operation), and the best
CPU ratio A could reach against a peer B is that figure over B's: the
benchmarks print it as "floor".

Run it in a separate load, never in the timed rounds: sampling call stacks
costs the server CPU. Exits 1 (and prints nothing) when perf cannot sample
the processes. perf runs on the load CPU (BENCH_LOAD_CPU), as the syscall
counts do. Also importable: split(pids, seconds) -> (share, samples) or
None.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import benchlib

SOCKET_WORK = ("tcp_sendmsg", "tcp_recvmsg")
FREQ = 997


def _stacks(script_out):
    """Yields each sample's frames (function names) from `perf script -F sym`."""
    for block in script_out.split("\n\n"):
        frames = [line.split(None, 1)[-1].strip() for line in block.splitlines() if line.strip()]
        if frames:
            yield frames


def split(pids, seconds):
    """(share of samples under SOCKET_WORK, samples) over `seconds`; None when
    perf is missing, refuses, or took no sample."""
    if not pids or not shutil.which("perf"):
        return None
    with tempfile.TemporaryDirectory(prefix="cpu-split.") as tmp:
        data = os.path.join(tmp, "perf.data")
        rec = subprocess.run(benchlib.pinned(
            ["perf", "record", "-q", "-F", str(FREQ), "-e", "cpu-clock", "-g", "-o", data,
             "-p", ",".join(str(p) for p in pids), "--", "sleep", str(seconds)],
            benchlib.LOAD_CPU),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             timeout=seconds + 60)
        if rec.returncode != 0 or not os.path.exists(data):
            return None
        out = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             timeout=300).stdout
    samples = socket_work = 0
    for frames in _stacks(out):
        samples += 1
        if any(f in SOCKET_WORK for f in frames):
            socket_work += 1
    return (socket_work / samples, samples) if samples else None


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    r = split([int(p) for p in argv[2:]], float(argv[1]))
    if r is None:
        return 1
    print(f"tcp_share={r[0]:.4f} samples={r[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
