"""test_grafana - contrib/grafana/zerg-dashboard.json queries only metrics
that zerg's status page has: every metric name in every panel's expression
is in a scrape of a zerg that runs each kind of block (http with proxy_pass
to an upstream group, proxy)."""
import json
import os
import re
import unittest

from prometheus_client.parser import text_string_to_metric_families

import zgtest
from zgtest import Zerg

from httptest import raw
from test_proxy_helpers import Backend, tag_handler

DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                         "grafana", "zerg-dashboard.json")


def queried_names(dash):
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for v in dash.get("templating", {}).get("list", []):
        exprs.append(v.get("query", ""))
    names = set()
    for e in exprs:
        e = re.sub(r'\{[^}]*\}', "", e)  # label matchers
        e = re.sub(r'"[^"]*"', "", e)
        names |= {n for n in re.findall(r'[a-zA-Z_:][a-zA-Z0-9_:]*', e) if n.startswith("zerg_")}
    return exprs, names

class Dashboard(unittest.TestCase):
    def test_every_queried_metric_is_scraped(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        self.assertEqual(dash["__inputs"][0]["pluginId"], "prometheus")
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        exprs, names = queried_names(dash)
        self.assertGreater(len(names), 15, names)
        backend = Backend(tag_handler)
        self.addCleanup(backend.stop)
        conf = f"""worker_processes: 2
load_modules: [http, proxy]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: http
    http:
      upstreams:
        app: ["{backend.addr()}"]
      locations:
        - {{{{ path: /metrics, status: true }}}}
        - {{{{ path: /app/, proxy_pass: "http://app" }}}}
  - listen: ["127.0.0.1:{{port1}}"]
    module: proxy
    proxy:
      name: pool
      upstream: {{{{ servers: ["{backend.addr()}"] }}}}
"""
        with Zerg(conf) as z:
            data = raw(z.ports[0], b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       5)
            body = data.split(b"\r\n\r\n", 1)[1].decode()
        scraped = set()
        for fam in text_string_to_metric_families(body):
            scraped |= {s.name for s in fam.samples}
        missing = sorted(names - scraped)
        self.assertEqual(missing, [], f"queried by the dashboard, not in a scrape: {missing}")

if __name__ == "__main__":
    zgtest.main()
