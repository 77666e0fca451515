#!/usr/bin/env python3
"""Differential test: libpq 18 (ctypes), psql 15 and pgwait on the same connection inputs.

Every case of corpus.py runs three clients, one after the other, each against a fresh
recording fake PostgreSQL peer (listeners on loopback addresses and Unix sockets inside a
private network and mount namespace). What reaches the wire (which listener, SSLRequest,
TLS, SNI, startup parameters, the password or its marker, how the server side ended) and the
outcome class are compared between libpq 18 (the reference) and pgwait. psql 15 is reported
for information only.

Python 3.11 standard library only; libpq is loaded with ctypes from psycopg's binary wheel.
See README.md next to this file.
"""

import argparse
import ctypes
import glob
import hashlib
import json
import os
import re
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

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
            addrs = HOSTS.get(host, [host])
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
        except Exception as e:  # a bug in the peer: make it visible in the record
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
    def __init__(self, listeners, certs):
        self.certs = certs
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
# The clients
# ----------------------------------------------------------------------------------------------

NETWORK_ERROR = re.compile(
    r"connection to server (at|on socket)|could not translate host name|timeout expired|"
    r"server closed the connection|could not connect to server|Connection refused|"
    r"No such file or directory|Network is unreachable|SSL error|SSL SYSCALL|FATAL|"
    r"server does not support SSL|received invalid response|certificate|"
    r"server requested|channel binding|authentication method requirement|"
    r"server sent|requirepeer|could not get peer credentials|"
    r"protocol version|session is (read-only|not read-only)|server is (not )?in hot standby|"
    r"does not support protocol|could not establish", re.I)


def last_error_line(text):
    """The error that ended the attempt: the last line that is not a DETAIL/HINT continuation."""
    lines = [l for l in (text or "").splitlines() if l.strip()]
    for line in reversed(lines):
        if not line.startswith((" ", "\t", "DETAIL", "HINT")):
            return line
    return lines[-1] if lines else ""


PREFIX = re.compile(r'^(psql: error: )?(connection to server (at|on socket) .*? failed: )?')
CONFIG_ERROR = re.compile(r'^(invalid |could not match |unrecognized |unsupported |missing |extra '
                          r'|unexpected |forbidden |end of string|IPv6 host address|'
                          r'definition of service|service file|syntax error in service|'
                          r'nested service|.* value: ")')


def error_class(text, records):
    """"config" for a problem with the settings (even when libpq finds it only once it has
    connected, as it does for connect_timeout and a port in a list), else "contacted"."""
    line = PREFIX.sub("", last_error_line(text))
    if CONFIG_ERROR.search(line):
        return "config"
    if records or NETWORK_ERROR.search(line):
        return "contacted"
    return "config"


def libpq_child(argv):
    """Runs in a child process with the case's environment: one PQconnectdbParams call.
    Its source is also run alone (python3 -S -c LIBPQ_CHILD) to keep the child's start fast."""
    import ctypes, json
    path, spec = argv[0], json.loads(argv[1])
    lib = ctypes.CDLL(path)
    lib.PQlibVersion.restype = ctypes.c_int
    version = lib.PQlibVersion()
    if version < 180000:
        print(json.dumps({"fatal": "libpq %s is older than 18 (PQlibVersion %d)" % (path, version)}))
        return 3
    lib.PQconnectdbParams.restype = ctypes.c_void_p
    lib.PQconnectdbParams.argtypes = [ctypes.POINTER(ctypes.c_char_p),
                                      ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    lib.PQstatus.argtypes = [ctypes.c_void_p]
    lib.PQerrorMessage.argtypes = [ctypes.c_void_p]
    lib.PQerrorMessage.restype = ctypes.c_char_p
    lib.PQfinish.argtypes = [ctypes.c_void_p]
    n = len(spec)
    keys = (ctypes.c_char_p * (n + 1))(*[k.encode() for k, _ in spec], None)
    vals = (ctypes.c_char_p * (n + 1))(
        *[None if v is None else v.encode("utf-8", "surrogateescape") for _, v in spec], None)
    conn = lib.PQconnectdbParams(keys, vals, 1)
    if not conn:
        print(json.dumps({"fatal": "PQconnectdbParams returned NULL (out of memory)"}))
        return 3
    status = lib.PQstatus(conn)
    err = (lib.PQerrorMessage(conn) or b"").decode("utf-8", "replace")
    lib.PQfinish(conn)
    print(json.dumps({"version": version, "status": status, "error": err}))
    return 0


LIBPQ_CHILD = None  # set below from libpq_child's source


def psql_style_keywords(flags, dsn):
    """psql's startup.c: host, port, user from the flags, then dbname (expanded) = the -d text."""
    opts = {"host": None, "port": None, "user": None}
    it = iter(flags)
    for f in it:
        key = {"-h": "host", "-p": "port", "-U": "user"}.get(f)
        if key is None:
            raise HarnessError("flag %r not supported by the libpq client" % f)
        opts[key] = next(it)
    return [["host", opts["host"]], ["port", opts["port"]], ["user", opts["user"]],
            ["dbname", dsn]]


def run_libpq(ctx, case_env, flags, dsn):
    spec = psql_style_keywords(flags, dsn)
    cmd = [sys.executable, "-S", "-c", LIBPQ_CHILD, ctx["libpq"], json.dumps(spec)]
    p = subprocess.run(cmd, env=case_env, capture_output=True, text=True, timeout=40,
                       stdin=subprocess.DEVNULL)
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise HarnessError("libpq child failed (rc %d): %s %s" % (p.returncode, p.stdout, p.stderr))
    if "fatal" in out:
        raise HarnessError(out["fatal"])
    ok = out["status"] == 0
    return {"ok": ok, "error": out["error"].strip(), "stderr": p.stderr.strip()[-500:]}


def run_psql(ctx, case_env, flags, dsn):
    cmd = [ctx["psql"], "-X", "-w", "-At"]
    if dsn is not None:
        cmd += ["-d", dsn]
    cmd += flags + ["-c", "SELECT 1"]
    p = subprocess.run(cmd, env=case_env, capture_output=True, text=True, timeout=40,
                       stdin=subprocess.DEVNULL)
    return {"rc": p.returncode, "ok": p.returncode == 0, "error": p.stderr.strip()[-1500:]}


def run_pgwait(ctx, case_env, flags, dsn):
    cmd = [ctx["pgwait"], "--once", "--connect-timeout", "3s"] + flags
    if dsn is not None:
        cmd += ["-d", dsn]
    p = subprocess.run(cmd, env=case_env, capture_output=True, text=True, timeout=40,
                       stdin=subprocess.DEVNULL)
    return {"rc": p.returncode, "ok": p.returncode == 0, "error": p.stderr.strip()[-1500:]}


def _child_source():
    import inspect
    return (inspect.getsource(libpq_child) +
            "import sys\nsys.exit(libpq_child(sys.argv[1:]))\n")


# ----------------------------------------------------------------------------------------------
# Running a case (inside a worker's namespaces)
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


def run_case(case, ctx):
    certs = ctx["certs"]
    tmp = tempfile.mkdtemp(prefix="case-", dir="/tmp")
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    try:
        write_files(case, tmp, home, certs)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8"}
        for k, v in case.env.items():
            env[k] = subst(v, tmp, home, certs)
        dsn = subst(case.dsn, tmp, home, certs)
        flags = [subst(f, tmp, home, certs) for f in case.flags]
        listeners = {subst(k, tmp, home, certs): v for k, v in case.listeners.items()}
        result = {"name": case.name, "source": case.source, "dsn": dsn, "flags": flags,
                  "env": case.env, "clients": {}}
        runners = [("libpq18", run_libpq), ("psql15", run_psql), ("pgwait", run_pgwait)]
        for client, runner in runners:
            if client == "psql15" and not ctx.get("psql"):
                continue
            peer = Peer(listeners, certs)
            peer.start()
            started = time.time()
            try:
                out = runner(ctx, dict(env), flags, dsn)
            finally:
                peer.stop()
            out["seconds"] = round(time.time() - started, 2)
            out["records"] = [dict(r) for r in peer.records]
            if client == "pgwait":
                out["class"] = {0: "ok", 2: "config", 1: "contacted", 3: "contacted"}.get(
                    out["rc"], "other:%d" % out["rc"])
            else:
                out["class"] = "ok" if out["ok"] else error_class(out["error"], out["records"])
            result["clients"][client] = out
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def setup_namespace(shared):
    global LIBPQ_CHILD
    LIBPQ_CHILD = _child_source()
    """Inside `unshare --mount --net`: loopback up, our /etc/hosts, empty socket directories."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "--bind", os.path.join(shared, "hosts"), "/etc/hosts"], check=True)
    for d in SOCKET_DIRS:
        real = os.path.realpath(d)
        if not os.path.isdir(real):
            raise HarnessError("socket directory %s missing" % real)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", real], check=True)


def worker_main(args):
    import corpus
    setup_namespace(args.shared)
    ctx = json.load(open(os.path.join(args.shared, "ctx.json")))
    by_name = {c.name: c for c in corpus.CASES}
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


# ----------------------------------------------------------------------------------------------
# Comparing
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


def normalise(records, reference):
    """Per-client records ready to compare with the reference (libpq 18's) records.

    application_name: libpq 18 is called without fallback_application_name, psql sets
    fallback_application_name=psql and pgwait its documented default "pgwait". A client's own
    fallback is therefore replaced by None where the reference sent none at that position.
    """
    out = []
    for i, r in enumerate(records):
        r = dict(r)
        ref = reference[i] if reference is not None and i < len(reference) else None
        if r["application_name"] == r["_fallback_app"] and (ref is None or ref["application_name"] is None):
            r["application_name"] = None
        del r["_fallback_app"]
        out.append(r)
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


def compare(result, unordered):
    """Differences between libpq18 and pgwait (and, for information, psql15)."""
    cl = result["clients"]
    ref_raw = [norm_record(r, None) for r in cl["libpq18"]["records"]]
    ref = normalise(ref_raw, None)
    diffs, info = [], []
    for client, fallback, sink in (("pgwait", "pgwait", diffs), ("psql15", "psql", info)):
        if client not in cl:
            continue
        got = normalise([norm_record(r, fallback) for r in cl[client]["records"]], ref)
        a, b = ref, got
        if unordered:
            a, b = sorted(a, key=short), sorted(b, key=short)
        if cl[client]["class"] != cl["libpq18"]["class"]:
            sink.append("outcome: libpq18=%s %s=%s" % (cl["libpq18"]["class"], client, cl[client]["class"]))
        both_config = cl[client]["class"] == cl["libpq18"]["class"] == "config"
        # A configuration error is one whichever client finds it: libpq finds some only after
        # connecting (connect_timeout, a port in a list); the records are not compared then.
        if a != b and not both_config:
            for i in range(max(len(a), len(b))):
                x = a[i] if i < len(a) else None
                y = b[i] if i < len(b) else None
                if x == y:
                    continue
                if x is None or y is None:
                    sink.append("conn#%d: libpq18=%s %s=%s" % (
                        i + 1, short(x) if x else "(none)", client, short(y) if y else "(none)"))
                else:
                    fields = [k for k in COMPARED if x[k] != y[k]]
                    sink.append("conn#%d %s: %s" % (i + 1, x["listener"] if x["listener"] == y["listener"] else "",
                                                    "; ".join("%s libpq18=%r %s=%r" % (k, x[k], client, y[k]) for k in fields)))
                break
    return diffs, info


# ----------------------------------------------------------------------------------------------
# The top level
# ----------------------------------------------------------------------------------------------

def find_libpq():
    pattern = os.path.join(REPO, "target", "pgwait-venv", "lib", "python3*", "site-packages",
                           "psycopg_binary.libs", "libpq-*.so.5.*")
    found = sorted(glob.glob(pattern))
    return found[-1] if found else None


def make_certs(shared):
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
    san = ",".join(["DNS:" + n for n in CERT_NAMES] + ["IP:" + i for i in CERT_IPS])
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


def write_hosts(shared):
    lines = ["# pgwait differential test hosts"]
    for name, addrs in HOSTS.items():
        for a in addrs:
            lines.append("%s %s" % (a, name))
    with open(os.path.join(shared, "hosts"), "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(os.path.join(shared, "hosts"), 0o644)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pgwait", help="the pgwait binary to test (required)")
    ap.add_argument("--libpq", help="libpq 18 shared object (default: psycopg's wheel in target/pgwait-venv)")
    ap.add_argument("--psql", default=shutil.which("psql") or "/usr/bin/psql", help="psql 15 (informational)")
    ap.add_argument("--only", action="append", help="run only cases whose name contains this (repeatable)")
    ap.add_argument("--json", help="write the full records here")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--jobs", type=int, default=4, help="worker processes (default 4)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every case, with records")
    ap.add_argument("--worker-cases", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--shared", help=argparse.SUPPRESS)
    if len(sys.argv) > 1 and sys.argv[1] == "--libpq-child":
        return libpq_child(sys.argv[2:])
    args = ap.parse_args()
    if args.worker_cases is not None:
        return worker_main(args)

    import corpus
    names = [c.name for c in corpus.CASES]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise HarnessError("duplicate case names: %s" % sorted(dup))
    stale = set(corpus.ALLOWED) - set(names)
    if stale:
        raise HarnessError("ALLOWED names no case: %s" % sorted(stale))
    cases = [c for c in corpus.CASES if not args.only or any(o in c.name for o in args.only)]
    if args.list:
        for c in cases:
            print("%-48s %s" % (c.name, c.source))
        print("%d cases" % len(cases))
        return 0
    if not args.pgwait:
        raise HarnessError("--pgwait PATH is required")
    pgwait = os.path.abspath(args.pgwait)
    if not os.access(pgwait, os.X_OK):
        raise HarnessError("pgwait binary %s not found or not executable" % pgwait)
    libpq = args.libpq or find_libpq()
    if not libpq or not os.path.exists(libpq):
        raise HarnessError("libpq 18 not found (looked for psycopg_binary.libs/libpq-*.so.5.* under "
                           "target/pgwait-venv): run .ci/run, or pip install 'psycopg[binary]>=3.2' "
                           "into target/pgwait-venv, or pass --libpq PATH")
    psql = args.psql if args.psql and os.path.exists(args.psql) else None
    if os.geteuid() != 0:
        raise HarnessError("needs root (unshare --mount --net, mounts over /etc/hosts and socket dirs)")
    for tool in ("unshare", "ip", "mount", "openssl"):
        if not shutil.which(tool):
            raise HarnessError("%s not found in PATH" % tool)
    probe = subprocess.run([sys.executable, os.path.abspath(__file__), "--libpq-child", libpq,
                            json.dumps([["dbname", "port=1 host=/nonexistent connect_timeout=1"]])],
                           capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")})
    try:
        version = json.loads(probe.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise HarnessError("cannot load libpq %s: %s" % (libpq, probe.stderr.strip()[-500:]))
    if "fatal" in version:
        raise HarnessError(version["fatal"])

    started = time.time()
    shared = tempfile.mkdtemp(prefix="pgwait-diff-", dir="/var/tmp")
    try:
        certs = make_certs(shared)
        write_hosts(shared)
        with open(os.path.join(shared, "ctx.json"), "w") as f:
            json.dump({"libpq": libpq, "psql": psql, "pgwait": pgwait, "certs": certs}, f)
        jobs = max(1, min(args.jobs, len(cases)))
        chunks = [cases[i::jobs] for i in range(jobs)]
        procs = []
        for i, chunk in enumerate(chunks):
            out = os.path.join(shared, "out%d.json" % i)
            cmd = ["unshare", "--mount", "--net", "--", sys.executable, os.path.abspath(__file__),
                   "--shared", shared, "--worker-out", out,
                   "--worker-cases", "\x1f".join(c.name for c in chunk)]
            procs.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           text=True), out))
        results = []
        for p, out in procs:
            text, _ = p.communicate(timeout=900)
            if p.returncode != 0 or not os.path.exists(out):
                raise HarnessError("worker failed (rc %s): %s" % (p.returncode, text[-3000:]))
            results += json.load(open(out))
    finally:
        shutil.rmtree(shared, ignore_errors=True)

    order = {c.name: i for i, c in enumerate(cases)}
    results.sort(key=lambda r: order[r["name"]])
    by_name = {c.name: c for c in cases}
    unexpected, allowed, errors, infos, same = [], [], [], 0, 0
    print("pgwait differential: %d cases; libpq %s (PQlibVersion %d); psql %s; pgwait %s" % (
        len(cases), os.path.basename(libpq), version["version"], psql or "(none)", pgwait))
    for r in results:
        case = by_name[r["name"]]
        if "harness_error" in r:
            errors.append(r["name"])
            print("ERROR  %s: %s" % (r["name"], r["harness_error"]))
            continue
        diffs, info = compare(r, case.unordered)
        r["diffs"], r["psql_info"] = diffs, info
        cl = r["clients"]
        if diffs:
            reason = corpus.ALLOWED.get(r["name"])
            tag = "ALLOWED" if reason else "DIFF"
            (allowed if reason else unexpected).append(r["name"])
            print("%-7s %s  [%s]" % (tag, r["name"], case.source))
            print("        input: %s%s%s" % (
                "-d %r " % r["dsn"] if r["dsn"] is not None else "",
                " ".join(r["flags"]) + " " if r["flags"] else "",
                " ".join("%s=%r" % kv for kv in sorted(case.env.items()))))
            for d in diffs:
                print("        " + d)
            if reason:
                print("        allowed: " + reason)
            print("        libpq18: %s" % (last_error_line(cl["libpq18"]["error"]) or "CONNECTION_OK"))
            print("        pgwait:  exit %d %s" % (cl["pgwait"]["rc"], last_error_line(cl["pgwait"]["error"])[:200]))
        else:
            same += 1
            if args.verbose:
                print("SAME    %s" % r["name"])
        if args.verbose:
            for client, out in cl.items():
                print("        %-8s %-9s %s" % (client, out["class"], " | ".join(
                    short(norm_record(x, None)) for x in out["records"]) or "(no connection)"))
        if info:
            infos += 1
            print("  psql   %s: %s" % (r["name"], " / ".join(info)))
    elapsed = time.time() - started
    print("\n%d cases in %.1fs: %d same, %d allowed differences, %d unexpected differences, "
          "%d harness errors; psql 15 differs from libpq 18 in %d" % (
              len(results), elapsed, same, len(allowed), len(unexpected), len(errors), infos))
    if unexpected:
        print("unexpected: " + " ".join(unexpected))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if errors:
        return 2
    return 1 if unexpected else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as e:
        print("libpq_diff: error: %s" % e, file=sys.stderr)
        sys.exit(2)
