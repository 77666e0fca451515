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

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import peer  # noqa: E402  (the shared recording peer, namespace, certificates, records)
from peer import (  # noqa: E402
    COMPARED, HarnessError, Peer, make_certs, norm_record, short, subst, write_files, write_hosts,
)

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
    """Inside `unshare --mount --net`: loopback up, our /etc/hosts, empty socket directories."""
    global LIBPQ_CHILD
    LIBPQ_CHILD = _child_source()
    peer.setup_namespace(shared, keep=[REPO])


def worker_main(args):
    import corpus
    setup_namespace(args.shared)
    return peer.worker_cases(args, corpus.CASES, run_case)


# ----------------------------------------------------------------------------------------------
# Comparing
# ----------------------------------------------------------------------------------------------

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


def main():
    ap = peer.arg_parser(__doc__)
    ap.add_argument("--libpq", help="libpq 18 shared object (default: psycopg's wheel in target/pgwait-venv)")
    ap.add_argument("--psql", default=shutil.which("psql") or "/usr/bin/psql", help="psql 15 (informational)")
    if len(sys.argv) > 1 and sys.argv[1] == "--libpq-child":
        return libpq_child(sys.argv[2:])
    args = ap.parse_args()
    if args.worker_cases is not None:
        return worker_main(args)

    import corpus
    peer.check_corpus(corpus.CASES, corpus.ALLOWED)
    cases = [c for c in corpus.CASES if not args.only or any(o in c.name for o in args.only)]
    if args.list:
        for c in cases:
            print("%-48s %s" % (c.name, c.source))
        print("%d cases" % len(cases))
        return 0
    pgwait = peer.check_pgwait_and_host(args.pgwait)
    libpq = args.libpq or find_libpq()
    if not libpq or not os.path.exists(libpq):
        raise HarnessError("libpq 18 not found (looked for psycopg_binary.libs/libpq-*.so.5.* under "
                           "target/pgwait-venv): run .ci/run, or pip install 'psycopg[binary]>=3.2' "
                           "into target/pgwait-venv, or pass --libpq PATH")
    psql = args.psql if args.psql and os.path.exists(args.psql) else None
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
        results = peer.run_workers(__file__, shared, cases, args.jobs, timeout=900)
    finally:
        shutil.rmtree(shared, ignore_errors=True)

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
