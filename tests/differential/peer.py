"""The shared parts of the differential tests (libpq_diff.py, drivers_diff.py).

* the recording fake PostgreSQL peer (`Peer`, `Listener`): listeners on loopback addresses and
  Unix sockets, TLS through a private CA, authentication trust/password/md5/scram/oauth, and a
  record per connection of what reached it;
* the private network and mount namespace a worker runs in (`setup_namespace`), the
  certificates (`make_certs`) and the hosts file (`write_hosts`);
* per-case files and placeholders (`subst`, `write_files`);
* the normalised connection record that is compared (`norm_record`, `short`, `COMPARED`).

`Peer(..., sql=True)` (drivers_diff.py) also answers the extended query protocol and the
statements drivers run after login; the default keeps libpq_diff.py's simple-query peer.
Python 3.11 standard library only. See README.md next to this file.
"""

import argparse
import hashlib
import json
import os
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import traceback


# Names in the namespace's /etc/hosts. h1..h3 as the brief, plus the names the libpq corpus
# uses. "dual" has an IPv6 and an IPv4 address; "other" is not in the server certificate.
HOSTS = {
    "localhost": ["127.0.0.1", "::1"],
    "h1": ["127.0.0.1"],
    "h2": ["127.0.0.2"],
    "h3": ["127.0.0.3"],
    "host": ["127.0.0.4"],
    "hostname": ["127.0.0.5"],
    "enc-test-localhost.postgresql.example.com": ["127.0.0.6"],
    "dual": ["::1", "127.0.0.7"],
    "other": ["127.0.0.8"],
    "db": ["127.0.0.9"],
}
CERT_NAMES = [n for n in HOSTS if n != "other"]
CERT_IPS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"]

SOCKET_DIRS = ["/var/run/postgresql", "/tmp"]  # libpq 18 wheel & psql 15 & pgwait; /tmp too
SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102

ERROR_TEXT = {
    "57P03": "the database system is starting up",
    "53300": "sorry, too many clients already",
    "28000": "no pg_hba.conf entry for this connection",
    "28P01": "password authentication failed",
    "3D000": "database does not exist",
    "XX000": "injected backend error",
}

# Startup parameters not compared: they do not change whether the server accepts the client.
IGNORED_PARAMS = {"client_encoding", "DateStyle", "TimeZone", "extra_float_digits"}
COMPARED = ("listener", "gss", "ssl", "tls", "sni", "alpn", "client_cert", "protocol", "user",
            "database", "application_name", "options", "replication", "other", "password", "result")


class HarnessError(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# The recording peer
# ----------------------------------------------------------------------------------------------

class Closed(Exception):
    pass


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise Closed()
        buf += chunk
    return buf


def read_message(sock):
    head = recv_exact(sock, 5)
    kind, length = head[:1], struct.unpack("!I", head[1:])[0]
    if length < 4 or length > 1 << 20:
        raise Closed()
    return kind, recv_exact(sock, length - 4)


def msg(kind, body=b""):
    return kind + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def error_response(code, text=None):
    text = text or ERROR_TEXT.get(code, "error " + code)
    body = b"SFATAL\0" + b"VFATAL\0" + b"C" + cstr(code) + b"M" + cstr(text) + b"\0"
    return msg(b"E", body)


def row_answer(cols):
    desc = struct.pack("!H", len(cols))
    data = struct.pack("!H", len(cols))
    for i, value in enumerate(cols):
        desc += cstr("c%d" % i) + struct.pack("!IHIhiH", 0, 0, 25, -1, -1, 0)
        raw = value.encode()
        data += struct.pack("!i", len(raw)) + raw
    return msg(b"T", desc) + msg(b"D", data) + msg(b"C", cstr("SELECT 1")) + msg(b"Z", b"I")


def answer_query(query, primary):
    q = query.lower()
    if "pg_is_in_recovery" in q and "transaction_read_only" in q:
        return row_answer(["false" if primary else "true", "off" if primary else "on"])
    if "transaction_read_only" in q:
        return row_answer(["off" if primary else "on"])
    if "pg_is_in_recovery" in q:
        return row_answer(["f" if primary else "t"])
    if "listen_addresses" in q:
        return row_answer(["*"])
    return row_answer(["1"])


class Listener:
    """One address a case names, and how the fake server there behaves."""

    def __init__(self, label, beh, peer):
        self.label, self.beh, self.peer = label, dict(beh), peer
        self.socks = []

    def bind(self):
        if self.label.startswith("unix:"):
            path = self.label[5:]
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.exists(path):
                os.unlink(path)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            self.socks.append((s, self.label))
        else:
            host, port = self.label.rsplit(":", 1)
            host = host.strip("[]")
            addrs = self.peer.hosts.get(host, [host])
            for addr in addrs:
                fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
                s = socket.socket(fam, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((addr, int(port)))
                label = self.label if len(addrs) == 1 else "%s@%s" % (self.label, addr)
                self.socks.append((s, label))
        for s, label in self.socks:
            s.listen(16)
            t = threading.Thread(target=self.accept_loop, args=(s, label), daemon=True)
            t.start()
            self.peer.threads.append(t)

    def accept_loop(self, s, label):
        while not self.peer.stopping:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            if self.peer.stopping:
                conn.close()
                return
            rec = self.peer.new_record(label)
            t = threading.Thread(target=self.serve, args=(conn, rec), daemon=True)
            t.start()
            self.peer.conn_threads.append(t)

    def close(self):
        for s, label in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the accept loop at once
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
            if label.startswith("unix:"):
                try:
                    os.unlink(label[5:])
                except OSError:
                    pass

    # -- one connection -------------------------------------------------------------------------
    def serve(self, sock, rec):
        sock.settimeout(8)
        try:
            self.converse(sock, rec)
        except Closed:
            rec.setdefault("result", "client-closed@" + rec.get("phase", "?"))
        except ssl.SSLError as e:
            rec.setdefault("result", "tls-failed")
            rec["tls_error"] = str(e)[:120]
        except (OSError, socket.timeout) as e:
            rec.setdefault("result", "io-error@%s" % rec.get("phase", "?"))
            rec["io_error"] = str(e)[:120]
        except Exception:  # a bug in the peer: make it visible in the record
            rec["result"] = "peer-bug"
            rec["peer_bug"] = traceback.format_exc()[-400:]
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def ssl_context(self, direct):
        beh, certs = self.beh, self.peer.certs
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(os.path.join(certs, "server.crt"), os.path.join(certs, "server.key"))
        ctx.set_alpn_protocols(["postgresql"])
        if beh.get("client_cert"):
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(os.path.join(certs, "ca.crt"))
        return ctx

    def start_tls(self, sock, rec, direct):
        ctx = self.ssl_context(direct)
        seen = {}

        def sni(sslobj, name, _ctx):
            seen["sni"] = name

        ctx.sni_callback = sni
        rec["phase"] = "tls"
        tsock = ctx.wrap_socket(sock, server_side=True)
        rec["tls"] = True
        rec["sni"] = seen.get("sni")
        rec["alpn"] = tsock.selected_alpn_protocol()
        rec["client_cert"] = bool(tsock.getpeercert(binary_form=True))
        return tsock

    def converse(self, sock, rec):
        beh = self.beh
        tls = False
        rec["phase"] = "startup"
        if beh.get("silent"):  # accepts, reads, never answers: the client's connect_timeout
            rec["result"] = "silent"
            while sock.recv(4096):
                pass
            return
        while True:
            if not tls:
                first = sock.recv(1, socket.MSG_PEEK)
                if not first:
                    raise Closed()
                if first == b"\x16":
                    rec["ssl"] = "direct"
                    if not beh.get("tls"):
                        rec["result"] = "direct-tls-refused"
                        return
                    sock = self.start_tls(sock, rec, True)
                    tls = True
                    continue
            length = struct.unpack("!I", recv_exact(sock, 4))[0]
            if length < 8 or length > 10000:
                rec["result"] = "bad-startup-length"
                return
            body = recv_exact(sock, length - 4)
            code = struct.unpack("!I", body[:4])[0]
            if code == SSL_REQUEST:
                rec["ssl"] = "request"
                if beh.get("tls") and not tls:
                    sock.sendall(b"S")
                    sock = self.start_tls(sock, rec, False)
                    tls = True
                else:
                    sock.sendall(b"N")
                continue
            if code == GSSENC_REQUEST:
                rec["gss"] = True
                sock.sendall(b"N")
                continue
            if code == CANCEL_REQUEST:
                rec["result"] = "cancel-request"
                return
            break
        major, minor = code >> 16, code & 0xFFFF
        rec["protocol"] = "%d.%d" % (major, minor)
        parts = body[4:].split(b"\0")
        params = {}
        for i in range(0, len(parts) - 1, 2):
            if parts[i] == b"":
                break
            params[parts[i].decode("utf-8", "backslashreplace")] = parts[i + 1].decode(
                "utf-8", "backslashreplace")
        rec["params"] = params
        rec["phase"] = "auth"
        if major != 3:
            sock.sendall(error_response("08P01", "unsupported frontend protocol"))
            rec["result"] = "error:08P01"
            return
        if minor > 0 and (beh.get("proto30") or minor > 2):
            pq = [k for k in params if k.startswith("_pq_.")]
            # NegotiateProtocolVersion carries the whole version number (3 << 16 | minor)
            body = struct.pack("!II", 3 << 16 | (0 if beh.get("proto30") else 2), len(pq))
            body += b"".join(cstr(k) for k in pq)
            sock.sendall(msg(b"v", body))
            minor = 0 if beh.get("proto30") else 2
        elif [k for k in params if k.startswith("_pq_.")]:
            pq = [k for k in params if k.startswith("_pq_.")]
            sock.sendall(msg(b"v", struct.pack("!II", 3 << 16 | minor, len(pq)) +
                             b"".join(cstr(k) for k in pq)))
        # pg_hba.conf-style rejections and injected errors before authentication
        if tls and beh.get("reject_tls"):
            return self.fail(sock, rec, beh["reject_tls"])
        if not tls and beh.get("reject_plain"):
            return self.fail(sock, rec, beh["reject_plain"])
        error = beh.get("error")
        error_after_auth = beh.get("error_after_auth", error == "3D000")
        if error and not error_after_auth:
            return self.fail(sock, rec, error)
        if not self.authenticate(sock, rec, tls, params):
            return
        sock.sendall(msg(b"R", struct.pack("!I", 0)))
        if error:
            return self.fail(sock, rec, error)
        primary = beh.get("primary", True)
        status = [("server_version", "18.0"), ("server_encoding", "UTF8"),
                  ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY"),
                  ("integer_datetimes", "on"), ("standard_conforming_strings", "on"),
                  ("in_hot_standby", "off" if primary else "on"),
                  ("default_transaction_read_only", "off" if primary else "on"),
                  ("application_name", params.get("application_name", ""))]
        out = b"".join(msg(b"S", cstr(k) + cstr(v)) for k, v in status)
        key = b"\x11" * (32 if minor >= 2 else 4)
        out += msg(b"K", struct.pack("!I", 4242) + key) + msg(b"Z", b"I")
        sock.sendall(out)
        rec["phase"] = "ready"
        rec["result"] = "ready"
        queries = rec.setdefault("queries", [])
        if self.peer.sql:
            return SqlSession(sock, rec, primary).run()
        while True:
            kind, body = read_message(sock)
            if kind == b"X":
                return
            if kind == b"Q":
                q = body.rstrip(b"\0").decode("utf-8", "replace")
                queries.append(q)
                sock.sendall(answer_query(q, primary))
            else:
                sock.sendall(error_response("0A000", "not supported by the fake peer").replace(
                    b"FATAL", b"ERROR") + msg(b"Z", b"I"))

    def fail(self, sock, rec, code):
        sock.sendall(error_response(code))
        rec["result"] = "error:" + code
        return None

    def authenticate(self, sock, rec, tls, params):
        """True when the client may be sent AuthenticationOk."""
        beh = self.beh
        method = beh.get("auth", "trust")
        if method == "trust":
            return True
        if method == "password":
            sock.sendall(msg(b"R", struct.pack("!I", 3)))
            kind, body = read_message(sock)
            pw = body.rstrip(b"\0").decode("utf-8", "backslashreplace")
            rec["password"] = pw
            want = beh.get("password")
            if want is not None and pw != want:
                self.fail(sock, rec, "28P01")
                return False
            return True
        if method == "md5":
            salt = b"\x01\x02\x03\x04"
            sock.sendall(msg(b"R", struct.pack("!I", 5) + salt))
            kind, body = read_message(sock)
            got = body.rstrip(b"\0").decode("ascii", "replace")
            rec["password"] = "md5:" + got
            want = beh.get("password")
            if want is not None:
                user = params.get("user", "")
                inner = hashlib.md5((want + user).encode()).hexdigest()
                if got != "md5" + hashlib.md5(inner.encode() + salt).hexdigest():
                    self.fail(sock, rec, "28P01")
                    return False
            return True
        if method in ("scram", "oauth"):
            mechs = ["OAUTHBEARER"] if method == "oauth" else (
                ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"] if tls else ["SCRAM-SHA-256"])
            sock.sendall(msg(b"R", struct.pack("!I", 10) + b"".join(cstr(m) for m in mechs) + b"\0"))
            kind, body = read_message(sock)
            mech, rest = body.split(b"\0", 1)
            data = rest[4:]
            gs2 = data.split(b",", 2)[0].decode("ascii", "replace") if method == "scram" else ""
            rec["password"] = "sasl:%s:%s" % (mech.decode(), gs2)
            self.fail(sock, rec, "28P01")
            return False
        raise HarnessError("unknown auth method %r" % method)


class Peer:
    def __init__(self, listeners, certs, hosts=None, sql=False):
        """listeners: {label: behaviour}; hosts: the names the namespace's /etc/hosts has (a
        label's name gets a listener on each address); sql: answer drivers' statements and the
        extended query protocol after login (drivers_diff.py), else libpq_diff.py's peer."""
        self.certs = certs
        self.hosts = HOSTS if hosts is None else hosts
        self.sql = sql
        self.records = []
        self.lock = threading.Lock()
        self.threads, self.conn_threads = [], []
        self.stopping = False
        self.listeners = [Listener(label, beh, self) for label, beh in listeners.items()]

    def new_record(self, label):
        rec = {"listener": label}
        with self.lock:
            self.records.append(rec)
        return rec

    def start(self):
        for l in self.listeners:
            l.bind()

    def stop(self):
        """Lets every connection the client made be accepted and served to its end first: a
        client that exits at once leaves its connection in the backlog."""
        deadline = time.time() + 3
        socks = [s for l in self.listeners for s, _ in l.socks]
        while time.time() < deadline:
            for t in list(self.conn_threads):
                t.join(max(0.0, deadline - time.time()))
            pending, _, _ = select.select(socks, [], [], 0.02) if socks else ([], [], [])
            if not pending and not any(t.is_alive() for t in self.conn_threads):
                break
        self.stopping = True
        for l in self.listeners:
            l.close()
        for t in self.threads:
            t.join(2)
        for t in list(self.conn_threads):
            t.join(max(0.5, deadline - time.time()))



# ----------------------------------------------------------------------------------------------
# Cases: files and placeholders
# ----------------------------------------------------------------------------------------------

def subst(value, tmp, home, certs):
    if value is None:
        return None
    return value.replace("{tmp}", tmp).replace("{home}", home).replace("{certs}", certs)


def write_files(case, tmp, home, certs):
    for rel, content in case.files.items():
        mode = 0o600
        if isinstance(content, tuple):
            content, mode = content
        path = subst(rel, tmp, home, certs)
        if not os.path.isabs(path):
            path = os.path.join(home, path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content.startswith("@certs/"):
            shutil.copyfile(os.path.join(certs, content[7:]), path)
        else:
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(subst(content, tmp, home, certs))
        os.chmod(path, mode)


# ----------------------------------------------------------------------------------------------
# The namespace, certificates, hosts file
# ----------------------------------------------------------------------------------------------

def setup_namespace(shared, keep=()):
    """Inside `unshare --mount --net`: loopback up, our /etc/hosts, empty socket directories.

    The socket directories (/tmp among them) get an empty tmpfs each; a path the run needs that
    lives under one of them (`keep`: a checkout in /tmp, its target/ with the venv, the drivers
    and the binary) is bound back into the fresh tmpfs, so the run works wherever it is checked
    out."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "--bind", os.path.join(shared, "hosts"), "/etc/hosts"], check=True)
    for n, d in enumerate(SOCKET_DIRS):
        real = os.path.realpath(d)
        if not os.path.isdir(real):
            raise HarnessError("socket directory %s missing" % real)
        held = sorted({os.path.relpath(os.path.realpath(k), real).split(os.sep)[0]
                       for k in keep if os.path.realpath(k).startswith(real + os.sep)})
        saved = os.path.join(shared, "held-%d-%d" % (os.getpid(), n))
        if held:
            os.makedirs(saved, exist_ok=True)
            subprocess.run(["mount", "--bind", real, saved], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", real], check=True)
        for top in held:
            target = os.path.join(real, top)
            os.makedirs(target, exist_ok=True)
            subprocess.run(["mount", "--bind", os.path.join(saved, top), target], check=True)


# ----------------------------------------------------------------------------------------------
# The run: checks, workers in their namespaces, collecting their results
# ----------------------------------------------------------------------------------------------

def arg_parser(doc):
    """The options both runners take (and the hidden ones a worker is started with)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--pgwait", help="the pgwait binary to test (required)")
    ap.add_argument("--only", action="append", help="run only cases whose name contains this (repeatable)")
    ap.add_argument("--json", help="write the full records here")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--jobs", type=int, default=4, help="worker processes (default 4)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every case, with records")
    ap.add_argument("--worker-cases", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--shared", help=argparse.SUPPRESS)
    return ap


def check_corpus(cases, allowed):
    """Case names are unique and every ALLOWED entry names a case."""
    names = [c.name for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise HarnessError("duplicate case names: %s" % sorted(dup))
    stale = set(allowed) - set(names)
    if stale:
        raise HarnessError("ALLOWED names no case: %s" % sorted(stale))


def check_pgwait_and_host(path):
    """The binary to test, and what the namespaces need: root and the tools. Returns its path."""
    if not path:
        raise HarnessError("--pgwait PATH is required")
    pgwait = os.path.abspath(path)
    if not os.access(pgwait, os.X_OK):
        raise HarnessError("pgwait binary %s not found or not executable" % pgwait)
    if os.geteuid() != 0:
        raise HarnessError("needs root (unshare --mount --net, mounts over /etc/hosts and socket dirs)")
    for tool in ("unshare", "ip", "mount", "openssl"):
        if not shutil.which(tool):
            raise HarnessError("%s not found in PATH" % tool)
    return pgwait


def run_workers(script, shared, cases, jobs, timeout):
    """Runs `script` as `jobs` workers, each under `unshare --mount --net` with a share of the
    cases (interleaved, so slow and fast clients mix); returns all their results."""
    jobs = max(1, min(jobs, len(cases)))
    procs = []
    for i in range(jobs):
        out = os.path.join(shared, "out%d.json" % i)
        cmd = ["unshare", "--mount", "--net", "--", sys.executable, os.path.abspath(script),
               "--shared", shared, "--worker-out", out,
               "--worker-cases", "\x1f".join(c.name for c in cases[i::jobs])]
        procs.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True), out))
    results = []
    for p, out in procs:
        text, _ = p.communicate(timeout=timeout)
        if p.returncode != 0 or not os.path.exists(out):
            raise HarnessError("worker failed (rc %s): %s" % (p.returncode, text[-3000:]))
        results += json.load(open(out))
    order = {c.name: i for i, c in enumerate(cases)}
    results.sort(key=lambda r: order[r["name"]])
    return results


def worker_cases(args, cases, run_case):
    """A worker's loop, inside its namespace: each named case with the run's context; a case
    that breaks the harness is recorded as such, not fatal to the others."""
    ctx = json.load(open(os.path.join(args.shared, "ctx.json")))
    by_name = {c.name: c for c in cases}
    results = []
    for name in args.worker_cases.split("\x1f"):
        if not name:
            continue
        try:
            results.append(run_case(by_name[name], ctx))
        except HarnessError as e:
            results.append({"name": name, "harness_error": str(e)})
        except Exception:
            results.append({"name": name, "harness_error": traceback.format_exc()[-1500:]})
    with open(args.worker_out, "w") as f:
        json.dump(results, f)
    return 0


def make_certs(shared, hosts=None):
    hosts = HOSTS if hosts is None else hosts
    cert_names = [n for n in hosts if n != "other"]
    d = os.path.join(shared, "certs")
    os.makedirs(d)

    def ossl(*a):
        p = subprocess.run(["openssl"] + list(a), cwd=d, capture_output=True, text=True)
        if p.returncode != 0:
            raise HarnessError("openssl %s failed: %s" % (a[0], p.stderr))

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        ossl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "3",
             "-subj", "/CN=pgwait differential " + ca, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    san = ",".join(["DNS:" + n for n in cert_names] + ["IP:" + i for i in CERT_IPS])
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,"
                "keyEncipherment\nextendedKeyUsage=serverAuth\n" % san)
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "h1"), ("client", "root")):
        ossl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        ossl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", name + ".crt", "-days", "3", "-extfile", name + ".ext")
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o600 if f.endswith(".key") else 0o644)
    return d


def write_hosts(shared, hosts=None):
    hosts = HOSTS if hosts is None else hosts
    lines = ["# pgwait differential test hosts"]
    for name, addrs in hosts.items():
        for a in addrs:
            lines.append("%s %s" % (a, name))
    with open(os.path.join(shared, "hosts"), "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(os.path.join(shared, "hosts"), 0o644)



# ----------------------------------------------------------------------------------------------
# The compared record
# ----------------------------------------------------------------------------------------------

def norm_record(rec, fallback_app):
    params = dict(rec.get("params") or {})
    out = {
        "listener": rec["listener"],
        "gss": bool(rec.get("gss")),
        "ssl": rec.get("ssl") or "-",
        "tls": bool(rec.get("tls")),
        "sni": rec.get("sni"),
        "alpn": rec.get("alpn") if rec.get("ssl") == "direct" else None,
        "client_cert": bool(rec.get("client_cert")),
        "protocol": rec.get("protocol"),
        "user": params.pop("user", None),
        "database": params.pop("database", None),
        "application_name": params.pop("application_name", None),
        "options": params.pop("options", None),
        "replication": params.pop("replication", None),
        "password": rec.get("password"),
        "result": rec.get("result", "?"),
    }
    for k in IGNORED_PARAMS:
        params.pop(k, None)
    out["other"] = ",".join("%s=%s" % kv for kv in sorted(params.items())) or None
    out["_fallback_app"] = fallback_app
    return out


def short(rec):
    bits = [rec["listener"]]
    if rec["gss"]:
        bits.append("gss")
    if rec["ssl"] != "-":
        bits.append("ssl=%s%s" % (rec["ssl"], "+tls" if rec["tls"] else ""))
    for k in ("sni", "alpn", "protocol", "user", "database", "application_name", "options",
              "replication", "other", "password"):
        if rec[k] not in (None, False) and not (k == "protocol" and rec[k] == "3.0"):
            bits.append("%s=%s" % (k, rec[k]))
    if rec["client_cert"]:
        bits.append("cert")
    bits.append("->" + rec["result"])
    return " ".join(bits)



# ----------------------------------------------------------------------------------------------
# After login, for drivers (Peer(..., sql=True)): simple and extended query protocol
# ----------------------------------------------------------------------------------------------

INT2, INT4, INT8, BOOL, TEXT = 21, 23, 20, 16, 25

SHOW_VALUES = {
    "time zone": "UTC", "timezone": "UTC", "server_version": "18.0",
    "server_version_num": "180000", "standard_conforming_strings": "on",
    "transaction isolation level": "read committed", "transaction_isolation": "read committed",
    "default_transaction_isolation": "read committed", "max_identifier_length": "63",
    "integer_datetimes": "on", "client_encoding": "UTF8", "server_encoding": "UTF8",
    "datestyle": "ISO, MDY", "intervalstyle": "postgres", "search_path": '"$user", public',
    "lc_collate": "C", "lc_ctype": "C", "is_superuser": "on",
}
SET_RE = None  # compiled on first use (re is not needed by libpq_diff.py's peer)


def split_statements(text):
    """A simple-query text split on top-level semicolons (quotes respected)."""
    out, cur, quote = [], [], None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == ";":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    stmts = [s for s in out if s.strip()]
    return stmts or [""]


def strip_comments(q):
    import re
    q = re.sub(r"/\*.*?\*/", " ", q, flags=re.S)
    q = re.sub(r"--[^\n]*", " ", q)
    return q.strip().rstrip(";").strip()


def select_items(body):
    """Top-level comma-separated items of a select list."""
    items, cur, depth, quote = [], [], 0, None
    for ch in body:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        items.append("".join(cur).strip())
    return items


def plan_query(query, primary, params):
    """What the fake server answers to one statement: ("empty",), ("cmd", tag) or
    ("rows", [(column, type oid)], [[value, ...]], tag). Unknown statements get an empty
    result (catalog queries) or a bare CommandComplete, never an error."""
    import re
    q = strip_comments(query)
    low = q.lower()
    if not low:
        return ("empty",)
    first = low.split(None, 1)[0]
    if first == "show":
        name = " ".join(low.split()[1:])
        if name == "transaction_read_only":
            value = "off" if primary else "on"
        else:
            value = SHOW_VALUES.get(name, "")
        col = "transaction_isolation" if name == "transaction isolation level" else name.replace(" ", "_")
        return ("rows", [(col, TEXT)], [[value]], "SHOW")
    if first in ("select", "with", "values") or first.startswith("("):
        if "pg_is_in_recovery" in low and "transaction_read_only" in low:
            return ("rows", [("c0", TEXT), ("c1", TEXT)],
                    [["false" if primary else "true", "off" if primary else "on"]], "SELECT 1")
        if "pg_is_in_recovery" in low and " from " not in low:
            return ("rows", [("pg_is_in_recovery", BOOL)], [["f" if primary else "t"]], "SELECT 1")
        if "transaction_read_only" in low and " from " not in low:
            return ("rows", [("current_setting", TEXT)], [["off" if primary else "on"]], "SELECT 1")
        if first != "select" or re.search(r"\bfrom\b", low):
            # catalog queries (type introspection, Rails' additional types...): no rows
            m = re.match(r"select\s+(.*?)\s+from\b", q, re.I | re.S)
            items = select_items(m.group(1)) if m else ["c0"]
            cols = []
            for it in items:
                a = re.search(r"\bas\s+\"?(\w+)\"?\s*$", it, re.I)
                name = a.group(1) if a else re.split(r"[.\s]", it.strip())[-1].strip('"') or "c"
                cols.append((name, TEXT))
            return ("rows", cols, [], "SELECT 0")
        items = select_items(q[len("select"):])
        cols, row = [], []
        for i, it in enumerate(items):
            a = re.search(r"\s+as\s+\"?(\w+)\"?\s*$", it, re.I)
            name = a.group(1) if a else "?column?"
            expr = it[:a.start()].strip() if a else it.strip()
            el = expr.lower()
            if re.fullmatch(r"-?\d+", el):
                cols.append((name, INT4 if abs(int(el)) < 2 ** 31 else INT8))
                row.append(el)
            elif el in ("true", "false"):
                cols.append((name, BOOL))
                row.append(el[0])
            elif "version()" in el:
                cols.append((name if a else "version", TEXT))
                row.append("PostgreSQL 18.0 on x86_64-pc-linux-gnu, compiled by gcc, 64-bit")
            elif "current_schema" in el:
                cols.append((name if a else "current_schema", TEXT))
                row.append("public")
            elif "current_database" in el:
                cols.append((name if a else "current_database", TEXT))
                row.append(params.get("database") or params.get("user") or "")
            elif "current_user" in el or "session_user" in el:
                cols.append((name if a else "current_user", TEXT))
                row.append(params.get("user", ""))
            elif re.fullmatch(r"'[^']*'(::\w+)?", el):
                cols.append((name, TEXT))
                row.append(expr.split("'")[1])
            else:
                cols.append((name, TEXT))
                row.append("")
        return ("rows", cols, [row], "SELECT 1")
    tag = {"begin": "BEGIN", "start": "BEGIN", "commit": "COMMIT", "end": "COMMIT",
           "rollback": "ROLLBACK", "abort": "ROLLBACK", "discard": "DISCARD ALL"}.get(first)
    if tag is None:
        tag = first.upper()
        if tag in ("INSERT",):
            tag = "INSERT 0 0"
        elif tag in ("UPDATE", "DELETE", "MOVE", "FETCH", "COPY"):
            tag += " 0"
    return ("cmd", tag)


def encode_value(value, oid, fmt):
    if value is None:
        return struct.pack("!i", -1)
    if fmt == 1:
        if oid == INT4:
            raw = struct.pack("!i", int(value))
        elif oid == INT8:
            raw = struct.pack("!q", int(value))
        elif oid == INT2:
            raw = struct.pack("!h", int(value))
        elif oid == BOOL:
            raw = b"\x01" if value in ("t", "true", "on") else b"\x00"
        else:
            raw = value.encode()
    else:
        raw = value.encode()
    return struct.pack("!i", len(raw)) + raw


def row_description(cols, formats):
    body = struct.pack("!H", len(cols))
    for i, (name, oid) in enumerate(cols):
        fmt = formats[i] if i < len(formats) else (formats[0] if len(formats) == 1 else 0)
        size = {INT4: 4, INT8: 8, INT2: 2, BOOL: 1}.get(oid, -1)
        body += cstr(name) + struct.pack("!IhIhih", 0, 0, oid, size, -1, fmt)
    return msg(b"T", body)


def fmt_of(formats, i):
    if not formats:
        return 0
    return formats[i] if len(formats) > 1 and i < len(formats) else formats[0]


class SqlSession:
    """Answers whatever a driver sends after ReadyForQuery: simple queries (several statements
    in one), and Parse/Bind/Describe/Execute/Sync/Flush/Close. Records every statement in
    rec["queries"] and `SET name = value` statements in rec["set"] (pgjdbc sends its
    ApplicationName that way)."""

    def __init__(self, sock, rec, primary):
        self.sock, self.rec, self.primary = sock, rec, primary
        self.params = rec.get("params") or {}
        self.stmts, self.portals = {}, {}
        self.failed = False

    def note(self, query):
        import re
        self.rec["queries"].append(query)
        m = re.match(r"\s*set\s+(?:session\s+)?(\w+)\s*(?:=|\bto\b)\s*(.*?)\s*;?\s*$",
                     strip_comments(query), re.I | re.S)
        if m:
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1].replace("''", "'")
            self.rec.setdefault("set", {})[m.group(1).lower()] = value

    def rows_out(self, plan, formats, describe):
        out = b""
        if plan[0] == "empty":
            return msg(b"I")
        if plan[0] == "cmd":
            return msg(b"C", cstr(plan[1]))
        _, cols, rows, tag = plan
        if describe:
            out += row_description(cols, formats)
        for row in rows:
            data = struct.pack("!H", len(row))
            for i, v in enumerate(row):
                data += encode_value(v, cols[i][1], fmt_of(formats, i))
            out += msg(b"D", data)
        return out + msg(b"C", cstr(tag if rows else tag.replace("SELECT 1", "SELECT 0")))

    def run(self):
        sock = self.sock
        while True:
            kind, body = read_message(sock)
            if kind == b"X":
                return
            if kind == b"Q":
                text = body.rstrip(b"\0").decode("utf-8", "replace")
                out = b""
                for stmt in split_statements(text):
                    self.note(stmt)
                    out += self.rows_out(plan_query(stmt, self.primary, self.params), [], True)
                sock.sendall(out + msg(b"Z", b"I"))
            elif kind == b"S":
                self.failed = False
                self.portals.pop("", None)
                sock.sendall(msg(b"Z", b"I"))
            elif kind == b"H":
                pass
            elif self.failed:
                continue  # after an error, skip to Sync
            elif kind == b"P":
                name, rest = body.split(b"\0", 1)
                query, rest = rest.split(b"\0", 1)
                n = struct.unpack("!H", rest[:2])[0]
                oids = list(struct.unpack("!%dI" % n, rest[2:2 + 4 * n])) if n else []
                q = query.decode("utf-8", "replace")
                self.note(q)
                import re
                nparams = max([int(x) for x in re.findall(r"\$(\d+)", q)] or [0])
                oids = [(oids[i] if i < len(oids) and oids[i] else TEXT) for i in range(max(nparams, len(oids)))]
                self.stmts[name] = (q, oids)
                sock.sendall(msg(b"1"))
            elif kind == b"B":
                portal, rest = body.split(b"\0", 1)
                stmt, rest = rest.split(b"\0", 1)
                nf = struct.unpack("!H", rest[:2])[0]
                pos = 2 + 2 * nf
                np_ = struct.unpack("!H", rest[pos:pos + 2])[0]
                pos += 2
                for _ in range(np_):
                    ln = struct.unpack("!i", rest[pos:pos + 4])[0]
                    pos += 4 + max(ln, 0)
                nr = struct.unpack("!H", rest[pos:pos + 2])[0]
                rfmt = list(struct.unpack("!%dh" % nr, rest[pos + 2:pos + 2 + 2 * nr])) if nr else []
                q = self.stmts.get(stmt, ("", []))[0]
                self.portals[portal] = (q, rfmt)
                sock.sendall(msg(b"2"))
            elif kind == b"D":
                what, name = body[:1], body[1:].rstrip(b"\0")
                if what == b"S":
                    q, oids = self.stmts.get(name, ("", []))
                    out = msg(b"t", struct.pack("!H", len(oids)) + b"".join(struct.pack("!I", o) for o in oids))
                    formats = []
                else:
                    q, formats = self.portals.get(name, ("", []))
                    out = b""
                plan = plan_query(q, self.primary, self.params)
                if plan[0] == "rows":
                    out += row_description(plan[1], [fmt_of(formats, i) for i in range(len(plan[1]))])
                else:
                    out += msg(b"n")
                sock.sendall(out)
            elif kind == b"E":
                portal = body.split(b"\0", 1)[0]
                q, formats = self.portals.get(portal, ("", []))
                sock.sendall(self.rows_out(plan_query(q, self.primary, self.params), formats, False))
            elif kind == b"C":
                what, name = body[:1], body[1:].rstrip(b"\0")
                (self.stmts if what == b"S" else self.portals).pop(name, None)
                sock.sendall(msg(b"3"))
            else:
                self.failed = True
                sock.sendall(error_response("0A000", "not supported by the fake peer").replace(
                    b"FATAL", b"ERROR"))
