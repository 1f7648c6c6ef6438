"""tlscerts - for the TLS integration tests: certificates made at test time
with the openssl CLI (CAs and the server or client leaves they sign), and
zerg -t of a configuration."""
import os
import shutil
import subprocess
import tempfile

import zgtest

SERVER_EXT = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" \
             "extendedKeyUsage=serverAuth\n"
CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n" \
             "extendedKeyUsage=clientAuth\n"


def openssl(*args, stdin=None, timeout=20):
    return subprocess.run(["openssl"] + list(args), input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)


def _run(*args):
    r = openssl(*args)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], r.stdout.decode(errors="replace")))


def make_ca(d, name, subject):
    """d/name.pem and d/name.key: a self-signed P-256 CA."""
    p = os.path.join(d, name)
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", p + ".key", "-out", p + ".pem", "-days", "30", "-subj", subject)


def make_leaf(d, name, ca, subject, names=(), client=False):
    """d/name.pem and d/name.key: a P-256 leaf that d/ca signed, for the DNS
    names given (a server's) or for client authentication."""
    p = os.path.join(d, name)
    ext = CLIENT_EXT if client else SERVER_EXT
    if names:
        ext += "subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n"
    with open(p + ".ext", "w") as f:
        f.write(ext)
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         p + ".key", "-out", p + ".csr", "-subj", subject)
    _run("x509", "-req", "-in", p + ".csr", "-CA", os.path.join(d, ca + ".pem"), "-CAkey",
         os.path.join(d, ca + ".key"), "-CAcreateserial", "-out", p + ".pem", "-days", "30",
         "-extfile", p + ".ext")


def check_conf(body):
    """zerg -t of body (modules_path and pid added): (exit code, output)."""
    d = tempfile.mkdtemp(prefix="zgtls-t-")
    try:
        path = os.path.join(d, "zerg.yaml")
        with open(path, "w") as f:
            f.write(f"modules_path: {zgtest.ZERG_MODULES}\npid: {d}/zerg.pid\n" + body)
        return zgtest.run_zerg(["-t", "-c", path])
    finally:
        shutil.rmtree(d, ignore_errors=True)
