"""http_conformance_nginx - zerg's http module and nginx side by side on the
http-desync-guardian request cases (the data is not kept in this project):
each case is sent as raw bytes to both (built as test_http_conformance.py
builds them), and the script prints, per tier, how many each refuses, then
every case where the two differ.

Usage (from the build directory, as make check runs the tests):
  ZERG_BIN=./zerg ZERG_MODULES=./build-modules \\
    /usr/bin/python3 ../tests/integration/http_conformance_nginx.py DATA_DIR [--nginx PATH]
DATA_DIR holds the cases' *.yaml files. Exits 0 when done (or when DATA_DIR
or nginx is missing, saying so), 1 when zerg serves a Severe case."""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "common"))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="the folder of http-desync-guardian *.yaml cases")
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    return ap.parse_args()


ARGS = parse_args()
import benchlib  # noqa: E402
import yaml  # noqa: E402
from test_http_conformance import CONF, REFUSED, build, outcome  # noqa: E402
from zgtest import Zerg  # noqa: E402

# nginx with what CONF gives zerg: one worker, "return 200", 8m bodies, 1s
# header and body timeouts
NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_header_timeout 1s;
    client_body_timeout 1s;
    client_max_body_size 8m;
    client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/pt; fastcgi_temp_path {tmp}/ft;
    uwsgi_temp_path {tmp}/ut; scgi_temp_path {tmp}/st;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def load_cases(data):
    cases = []
    for f in sorted(glob.glob(os.path.join(data, "*.yaml"))):
        with open(f, encoding="utf-8") as fh:
            for c in yaml.safe_load(fh) or []:
                cases.append((os.path.basename(f), c))
    return cases


def start_nginx(binary, tmp):
    port = benchlib.free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=tmp, port=port))
    proc = subprocess.Popen([binary, "-p", tmp, "-e", f"{tmp}/nginx-error.log", "-c", conf],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    benchlib.need_port("127.0.0.1", port)
    return proc, port


def main():
    if not os.path.isdir(ARGS.data):
        print(f"no conformance data at {ARGS.data}: nothing compared")
        return 0
    if not os.access(ARGS.nginx, os.X_OK):
        print(f"no nginx at {ARGS.nginx}: nothing compared")
        return 0
    cases = load_cases(ARGS.data)
    tmp = tempfile.mkdtemp(prefix="conformance-nginx-")
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    nginx, nport = start_nginx(ARGS.nginx, tmp)
    results = []
    try:
        with Zerg(CONF) as z:
            for fname, c in cases:
                data = build(c)
                results.append((fname, c, outcome(z.ports[0], data), outcome(nport, data)))
    finally:
        benchlib.stop(nginx)
    stats = {}
    for fname, c, zs, ns in results:
        t = stats.setdefault(c["expected"]["tier"], [0, 0, 0])
        t[0] += 1
        t[1] += zs is None or zs in REFUSED
        t[2] += ns is None or ns in REFUSED
    print(f"{'tier':12s} {'cases':>5s} {'zerg refuses':>12s} {'nginx refuses':>13s}")
    for tier, (n, zr, nr) in sorted(stats.items()):
        print(f"{tier:12s} {n:5d} {zr:12d} {nr:13d}")
    print("\ncases where they differ (status, - for closed without an answer, 408 for a\n"
          "head accepted whose chunked body, absent from the case, was awaited):")
    severe_served = 0
    for fname, c, zs, ns in results:
        zref = zs is None or zs in REFUSED
        nref = ns is None or ns in REFUSED
        tier = c["expected"]["tier"]
        severe_served += tier == "Severe" and not zref
        if zref != nref or (zref and zs != ns):
            print(f"  {tier:10s} zerg {zs or '-'!s:>3s} nginx {ns or '-'!s:>3s}  {fname}: {c['name']}")
    print("\nAmbiguous and Acceptable cases zerg serves:")
    for fname, c, zs, ns in results:
        if c["expected"]["tier"] in ("Ambiguous", "Acceptable") and zs not in REFUSED + (None,):
            print(f"  {c['expected']['tier']:10s} zerg {zs} nginx {ns or '-'}  {fname}: {c['name']}")
    return 1 if severe_served else 0


if __name__ == "__main__":
    sys.exit(main())
