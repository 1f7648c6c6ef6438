"""test_http_conformance - runs the http-desync-guardian request cases (kept in
$ZERG_SHARED/conformance, never copied here) against the http module: every
Severe case refused, Compliant cases served, the rest reported.
Usage: test_http_conformance.py [DIR]; skips cleanly when the data is absent."""
import glob
import os
import re
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import Zerg  # noqa: E402

DATA = None
if len(sys.argv) > 1 and os.path.isdir(sys.argv[1]):
    DATA = sys.argv.pop(1)
elif zgtest.SHARED:
    DATA = os.path.join(zgtest.SHARED, "conformance", "http-desync-guardian")

try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

CONF = """
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      client_header_timeout: 1s
      client_body_timeout: 1s
      client_max_body_size: 8m
      locations:
        - path: /
          return:
            status: 200
            body: "ok"
"""

REFUSED = (400, 411, 413, 414, 431, 501, 505)


def build(case):
    method = str(case.get("method") or "GET")
    uri = str(case.get("uri") or "/")
    version = case.get("version")
    version = "" if version is None else str(version)
    line = f"{method} {uri}" + (f" {version}" if version else "")
    hdrs = case.get("headers") or []
    out = [line]
    has_host = False
    body_len = 0
    for h in hdrs:
        name = str(h.get("name", ""))
        value = h.get("value", "")
        value = "" if value is None else str(value)
        if name.strip().lower() == "host":
            has_host = True
        if name.lower() == "content-length" and re.fullmatch(r"\d{1,6}", value.strip()):
            body_len = int(value.strip())
        out.append(f"{name}: {value}" if name or value else "")
    if not has_host:
        out.append("Host: example.com")
    out.append("Connection: close")
    data = b"\r\n".join(enc(x) for x in out) + b"\r\n\r\n"
    return data + b"x" * body_len


def enc(s):
    """Latin-1 when it fits (the YAML escapes bytes as \\xNN), else UTF-8."""
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def outcome(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(data)
    except OSError:
        pass
    s.settimeout(3)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
            if complete(got):
                break
    except (OSError, socket.timeout):
        pass
    s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    return int(m.group(1)) if m else None


def complete(buf):
    """One whole response (head and Content-Length body) is in buf."""
    if b"\r\n\r\n" not in buf:
        return False
    head, body = buf.split(b"\r\n\r\n", 1)
    m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
    return len(body) >= (int(m.group(1)) if m else 0)


@unittest.skipUnless(DATA and os.path.isdir(DATA or ""), "conformance data absent")
class TestConformance(unittest.TestCase):
    def test_cases(self):
        # the data is here: reading it is required, never a silent skip
        self.assertIsNotNone(yaml, "python3-yaml is needed to read the conformance data")
        cases = []
        for f in sorted(glob.glob(os.path.join(DATA, "*.yaml"))):
            with open(f, encoding="utf-8") as fh:
                for c in yaml.safe_load(fh) or []:
                    cases.append((os.path.basename(f), c))
        stats = {}
        bad = []
        with Zerg(CONF) as z:
            for fname, c in cases:
                tier = c["expected"]["tier"]
                st = outcome(z.ports[0], build(c))
                refused = st is None or st in REFUSED
                t = stats.setdefault(tier, [0, 0])
                t[0] += 1
                t[1] += refused
                if tier == "Severe" and not refused:
                    bad.append(f"Severe served ({st}): {fname}: {c['name']}")
                if tier == "Compliant" and refused:
                    print(f"  compliant refused ({st}): {fname}: {c['name']}")
                if tier in ("Ambiguous", "Acceptable") and refused:
                    print(f"  {tier.lower()} refused ({st}): {fname}: {c['name']}")
        for tier, (n, r) in sorted(stats.items()):
            print(f"{tier}: {n} cases, {r} refused, {n - r} served")
        self.assertEqual(bad, [])
        comp = stats.get("Compliant", [0, 0])
        self.assertGreater(comp[0] - comp[1], 19, "fewer Compliant cases served than nginx")


if __name__ == "__main__":
    zgtest.main()
