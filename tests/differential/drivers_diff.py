#!/usr/bin/env python3
"""Differential test: real PostgreSQL drivers and `pgwait --driver NAME` on the same strings.

Every case of drivers_corpus.py runs the driver's own client (pgjdbc, node-postgres, pgx v4,
ActiveRecord + ruby-pg, asyncpg, SQLAlchemy + asyncpg) and then pgwait, each against a fresh
recording fake PostgreSQL peer (peer.py) inside a private network and mount namespace, and
compares what reached the server: listener order, SSLRequest, TLS, user, database, options and
settings, application_name (when the string sets one), the password sent, and the outcome class.

Python 3.11 standard library only (the drivers run as child processes). See README.md.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import peer  # noqa: E402
from peer import HarnessError, Peer, make_certs, subst, write_files, write_hosts  # noqa: E402

# libpq_diff's names plus the host names the drivers' documentation uses.
HOSTS = dict(peer.HOSTS)
for i, name in enumerate(["db1", "db2", "database.server.com", "somehost", "pg.example.com",
                          "foo.example.com", "bar.example.com", "node1", "node2", "node3",
                          "host1", "host2", "hosta", "hostb"]):
    HOSTS[name] = ["127.0.0.%d" % (10 + i)]

DRIVERS_DIR = os.path.join(REPO, "target", "drivers")
VENV = os.path.join(REPO, "target", "pgwait-venv")
CLIENTS = os.path.join(HERE, "drivers")
JDBC_JAR = "/usr/share/java/postgresql.jar"
NODE_MODULES = os.path.join(DRIVERS_DIR, "node", "root", "usr", "share", "nodejs")
GOPATH_DEBIAN = "/usr/share/gocode"

# Startup parameters that do not decide whether a server accepts the login.
IGNORED_PARAMS = {"client_encoding", "DateStyle", "TimeZone", "extra_float_digits"}
FIELDS = ("listener", "ssl", "tls", "user", "database", "application_name", "options",
          "settings", "password", "result")


# ----------------------------------------------------------------------------------------------
# The reference clients
# ----------------------------------------------------------------------------------------------

def tools():
    """What each reference client needs; a missing one is a harness error naming .ci/run."""
    py = os.path.join(VENV, "bin", "python3")
    need = {
        "java (Java 17)": shutil.which("java"),
        "javac": shutil.which("javac"),
        "pgjdbc (" + JDBC_JAR + ", apt libpostgresql-jdbc-java)": JDBC_JAR if os.path.exists(JDBC_JAR) else None,
        "node": shutil.which("node"),
        "node-postgres (" + NODE_MODULES + "/pg, apt-get download node-pg)":
            NODE_MODULES if os.path.isdir(os.path.join(NODE_MODULES, "pg")) else None,
        "go (apt golang-go)": shutil.which("go"),
        "pgx v4 sources (apt golang-github-jackc-pgx-v4-dev)":
            GOPATH_DEBIAN if os.path.isdir(os.path.join(GOPATH_DEBIAN, "src/github.com/jackc/pgx/v4")) else None,
        "ruby": shutil.which("ruby"),
        "ActiveRecord (apt ruby-activerecord)": "ok" if subprocess.run(
            ["ruby", "-e", "require 'active_record'; require 'pg'"], capture_output=True).returncode == 0 else None,
        "asyncpg + SQLAlchemy (" + VENV + ")": py if os.path.exists(py) and subprocess.run(
            [py, "-c", "import asyncpg, sqlalchemy, greenlet"], capture_output=True).returncode == 0 else None,
    }
    missing = [k for k, v in need.items() if not v]
    if missing:
        raise HarnessError("driver(s) missing: %s; run .ci/run (it installs them)" % "; ".join(missing))
    return py


def stale(out, *sources):
    return not os.path.exists(out) or any(os.path.getmtime(s) > os.path.getmtime(out) for s in sources)


def build_clients():
    """Client.java compiled once to a class, pgxcheck built once (offline, GOPATH mode)."""
    jdir = os.path.join(DRIVERS_DIR, "jdbc", "classes")
    src = os.path.join(CLIENTS, "Client.java")
    if stale(os.path.join(jdir, "Client.class"), src):
        os.makedirs(jdir, exist_ok=True)
        p = subprocess.run(["javac", "-d", jdir, "-cp", JDBC_JAR, src], capture_output=True, text=True)
        if p.returncode:
            raise HarnessError("javac Client.java failed: " + p.stderr[-1500:])
    gdir = os.path.join(DRIVERS_DIR, "pgx")
    binary = os.path.join(gdir, "pgxcheck")
    gsrc = os.path.join(CLIENTS, "pgxcheck.go")
    if stale(binary, gsrc):
        pkg = os.path.join(gdir, "gopath", "src", "pgxcheck")
        os.makedirs(pkg, exist_ok=True)
        os.makedirs(os.path.join(gdir, "gocache"), exist_ok=True)
        shutil.copyfile(gsrc, os.path.join(pkg, "main.go"))
        env = dict(os.environ, GO111MODULE="off", GOPROXY="off", GOFLAGS="",
                   GOPATH=os.path.join(gdir, "gopath") + ":" + GOPATH_DEBIAN,
                   GOCACHE=os.path.join(gdir, "gocache"))
        p = subprocess.run(["go", "build", "-o", binary, "."], cwd=pkg, env=env, capture_output=True, text=True)
        if p.returncode:
            raise HarnessError("go build pgxcheck failed (pgx v4 and pgconn from Debian needed): " + p.stderr[-1500:])
    return {"jdbc_classes": jdir, "pgxcheck": binary}


def driver_command(ctx, driver, url):
    if driver == "jdbc":
        return ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp",
                JDBC_JAR + ":" + ctx["jdbc_classes"], "Client", url], {}
    if driver == "node-postgres":
        return ["node", os.path.join(CLIENTS, "nodecheck.js"), url], {"NODE_PATH": NODE_MODULES}
    if driver == "pgx":
        return [ctx["pgxcheck"], url], {}
    if driver == "rails":
        return ["ruby", os.path.join(CLIENTS, "client.rb"), url], {}
    if driver in ("asyncpg", "sqlalchemy"):
        return [ctx["python"], "-s", os.path.join(CLIENTS, "pycheck.py"), driver, url], {}
    raise HarnessError("no client for driver %r" % driver)


NETWORK_ERROR = re.compile(
    r"ECONNREFUSED|ENOTFOUND|EAI_AGAIN|Connection refused|connection refused|UnknownHost|"
    r"could not translate host name|No such file or directory|timeout|timed out|"
    r"connection attempt failed|dial error|hostname resolving|Name or service not known|"
    r"Temporary failure in name resolution|ConnectionRefusedError|OSError", re.I)


def run_client(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=40, stdin=subprocess.DEVNULL)
    out = (p.stdout.strip().splitlines() or [""])[-1]
    err = p.stderr.strip()
    return {"rc": p.returncode, "ok": p.returncode == 0, "out": out[:600], "stderr": err[-1500:]}


def driver_class(out, records):
    """connected / rejected (it reached a server, or failed at the network) / client-side
    (it failed before anything reached a server, e.g. a parse or argument error)."""
    if out["ok"]:
        return "connected"
    if records:
        return "rejected"
    text = out["out"] + "\n" + out["stderr"]
    return "rejected" if NETWORK_ERROR.search(text) else "client-side"


def pgwait_class(out):
    if out["rc"] == 2 and re.search(r"unexpected argument '--driver'|unknown option|unrecognized option",
                                    out["stderr"]):
        return "no-driver-option"
    return {0: "connected", 2: "client-side", 1: "rejected", 3: "rejected"}.get(out["rc"], "other:%d" % out["rc"])


# ----------------------------------------------------------------------------------------------
# Running a case (inside a worker's namespaces)
# ----------------------------------------------------------------------------------------------

def run_case(case, ctx):
    import drivers_corpus
    certs = ctx["certs"]
    tmp = tempfile.mkdtemp(prefix="case-", dir="/tmp")
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    mounted = False
    try:
        write_files(case, tmp, home, certs)
        # pgjdbc (user.home) and pgx (os/user) take the home directory from /etc/passwd, not
        # from $HOME: an /etc/passwd whose entry for this user names the case's home is
        # bind-mounted for the case, and HOME names the same directory.
        passwd = os.path.join(tmp, "passwd")
        with open("/etc/passwd") as f, open(passwd, "w") as out:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 7 and parts[2] == str(os.getuid()):
                    parts[5] = home
                out.write(":".join(parts) + "\n")
        os.chmod(passwd, 0o644)
        subprocess.run(["mount", "--bind", passwd, "/etc/passwd"], check=True)
        mounted = True
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8"}
        for k, v in case.env.items():
            env[k] = subst(v, tmp, home, certs)
        url = subst(case.url, tmp, home, certs)
        listeners = {subst(k, tmp, home, certs): v for k, v in case.behaviours(case.variant).items()}
        result = {"name": case.name, "driver": case.driver, "variant": case.variant, "source": case.source,
                  "url": url, "clients": {}}
        pgwait_driver = drivers_corpus.DRIVERS[case.driver]
        runs = [("driver",) + driver_command(ctx, case.driver, url),
                ("pgwait", [ctx["pgwait"], "--once", "--connect-timeout", "3s", "--driver", pgwait_driver,
                            "-d", url], {})]
        for client, cmd, extra in runs:
            p = Peer(listeners, certs, hosts=HOSTS, sql=True)
            p.start()
            started = time.time()
            try:
                out = run_client(cmd, dict(env, **extra))
            except subprocess.TimeoutExpired:
                out = {"rc": -1, "ok": False, "out": "timeout (40 s)", "stderr": ""}
            finally:
                p.stop()
            out["seconds"] = round(time.time() - started, 2)
            out["records"] = [dict(r) for r in p.records]
            out["class"] = pgwait_class(out) if client == "pgwait" else driver_class(out, out["records"])
            result["clients"][client] = out
        result["command"] = " ".join(shlex.quote(c) for c in runs[1][1])
        return result
    finally:
        if mounted:
            subprocess.run(["umount", "/etc/passwd"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def worker_main(args):
    import drivers_corpus
    peer.setup_namespace(args.shared, keep=[REPO])
    return peer.worker_cases(args, drivers_corpus.CASES, run_case)


# ----------------------------------------------------------------------------------------------
# Comparing
# ----------------------------------------------------------------------------------------------

def split_options(options):
    """libpq-style options text: `-c name=value` / `--name=value` become settings; the rest
    stays as options. Backslash escapes a space, as the server reads it."""
    if not options:
        return None, {}
    words, cur, esc = [], "", False
    for ch in options:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch.isspace():
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    rest, settings, i = [], {}, 0
    while i < len(words):
        w = words[i]
        if w == "-c" and i + 1 < len(words) and "=" in words[i + 1]:
            k, v = words[i + 1].split("=", 1)
            settings[k.lower().replace("-", "_")] = v
            i += 2
            continue
        if w.startswith("-c") and "=" in w[2:]:
            k, v = w[2:].split("=", 1)
            settings[k.lower().replace("-", "_")] = v
        elif w.startswith("--") and "=" in w:
            k, v = w[2:].split("=", 1)
            settings[k.lower().replace("-", "_")] = v
        else:
            rest.append(w)
        i += 1
    return (" ".join(rest) or None), settings


def norm_result(r):
    if r.startswith("tls-failed") or r == "client-closed@tls" or r == "io-error@tls":
        return "tls-aborted"
    if r.startswith("io-error@"):
        return "client-closed@" + r.split("@", 1)[1]
    return r


def norm_record(rec, app_compared):
    params = dict(rec.get("params") or {})
    app = params.pop("application_name", None)
    app = (rec.get("set") or {}).get("application_name", app)  # pgjdbc: SET after login
    options, settings = split_options(params.pop("options", None))
    for k in IGNORED_PARAMS:
        params.pop(k, None)
    user, database = params.pop("user", None), params.pop("database", None)
    for k, v in params.items():
        settings[k.lower()] = v
    for k in IGNORED_PARAMS:
        settings.pop(k.lower(), None)
    return {
        "listener": rec["listener"],
        "ssl": rec.get("ssl") or "-",
        "tls": bool(rec.get("tls")),
        "user": user,
        "database": database,
        "application_name": app if app_compared else None,
        "options": options,
        "settings": ",".join("%s=%s" % kv for kv in sorted(settings.items())) or None,
        "password": rec.get("password"),
        "result": norm_result(rec.get("result", "?")),
    }


def short(rec):
    bits = [rec["listener"]]
    if rec["ssl"] != "-":
        bits.append("ssl=%s%s" % (rec["ssl"], "+tls" if rec["tls"] else ""))
    for k in ("user", "database", "application_name", "options", "settings", "password"):
        if rec[k] is not None:
            bits.append("%s=%s" % (k, rec[k]))
    bits.append("->" + rec["result"])
    return " ".join(bits)


def app_name_set(case):
    u = case.url
    return bool(re.search(r"(?i)application_?name=", u)) or "PGAPPNAME" in case.env


def compare(result, case):
    cl = result["clients"]
    drv, pgw = cl["driver"], cl["pgwait"]
    if pgw["class"] == "no-driver-option":
        return ["pgwait has no --driver option: %s" % pgw["stderr"][:160]]
    if case.expect_pgwait_refuses:
        diffs = []
        if drv["class"] == "connected":
            diffs.append("the driver connected, but the case says it cannot (%s)" % case.expect_pgwait_refuses)
        if pgw["class"] != "client-side":
            diffs.append("outcome: pgwait=%s (exit %d), expected exit 2 because: %s" % (
                pgw["class"], pgw["rc"], case.expect_pgwait_refuses))
        return diffs
    diffs = []
    if drv["class"] != pgw["class"]:
        diffs.append("outcome: driver=%s pgwait=%s" % (drv["class"], pgw["class"]))
    if drv["class"] == pgw["class"] == "client-side":
        return diffs
    app = app_name_set(case)
    a = [norm_record(r, app) for r in drv["records"]]
    b = [norm_record(r, app) for r in pgw["records"]]
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x == y:
            continue
        if x is None or y is None:
            diffs.append("conn#%d: driver=%s pgwait=%s" % (i + 1, short(x) if x else "(none)", short(y) if y else "(none)"))
        else:
            diffs.append("conn#%d: %s" % (i + 1, "; ".join(
                "%s driver=%r pgwait=%r" % (k, x[k], y[k]) for k in FIELDS if x[k] != y[k])))
        break
    return diffs


# ----------------------------------------------------------------------------------------------
# The top level
# ----------------------------------------------------------------------------------------------

def main():
    ap = peer.arg_parser(__doc__)
    ap.add_argument("--driver", action="append", help="run only this driver group (repeatable)")
    args = ap.parse_args()
    if args.worker_cases is not None:
        return worker_main(args)

    import drivers_corpus
    peer.check_corpus(drivers_corpus.CASES, drivers_corpus.ALLOWED)
    cases = [c for c in drivers_corpus.CASES
             if (not args.only or any(o in c.name for o in args.only))
             and (not args.driver or c.driver in args.driver)]
    if args.list:
        for c in cases:
            print("%-100s %s" % (c.name, c.source))
        print("%d cases" % len(cases))
        return 0
    pgwait = peer.check_pgwait_and_host(args.pgwait)
    started = time.time()
    python = tools()
    built = build_clients()

    shared = tempfile.mkdtemp(prefix="pgwait-drivers-", dir="/var/tmp")
    try:
        certs = make_certs(shared, HOSTS)
        write_hosts(shared, HOSTS)
        # a copy: the whole run tests one binary even if target/ is rebuilt meanwhile
        snapshot = os.path.join(shared, "pgwait")
        shutil.copy2(pgwait, snapshot)
        with open(os.path.join(shared, "ctx.json"), "w") as f:
            json.dump(dict(built, python=python, pgwait=snapshot, certs=certs), f)
        results = peer.run_workers(__file__, shared, cases, args.jobs, timeout=1200)
    finally:
        shutil.rmtree(shared, ignore_errors=True)

    by_name = {c.name: c for c in cases}
    per = {}
    unexpected, allowed, errors, nodriver = [], [], [], []
    print("pgwait driver differential: %d cases; pgwait %s" % (len(cases), pgwait))
    for r in results:
        case = by_name[r["name"]]
        st = per.setdefault(case.driver, {"cases": 0, "same": 0, "diff": 0, "allowed": 0, "no-driver": 0,
                                          "errors": 0, "driver_s": 0.0, "pgwait_s": 0.0})
        st["cases"] += 1
        if "harness_error" in r:
            errors.append(r["name"])
            st["errors"] += 1
            print("ERROR   %s: %s" % (r["name"], r["harness_error"]))
            continue
        cl = r["clients"]
        st["driver_s"] += cl["driver"]["seconds"]
        st["pgwait_s"] += cl["pgwait"]["seconds"]
        diffs = compare(r, case)
        r["diffs"] = diffs
        if cl["pgwait"]["class"] == "no-driver-option":
            nodriver.append(r["name"])
            st["no-driver"] += 1
            tag = "NODRV"
        elif diffs:
            reason = drivers_corpus.ALLOWED.get(r["name"])
            tag = "ALLOWED" if reason else "DIFF"
            (allowed if reason else unexpected).append(r["name"])
            st["allowed" if reason else "diff"] += 1
        else:
            st["same"] += 1
            tag = "SAME"
        if tag != "SAME" or args.verbose:
            print("%-7s %s  [%s]" % (tag, r["name"], case.source))
            if tag == "NODRV" and not args.verbose:
                continue
            for d in diffs:
                print("        " + d)
            if tag == "ALLOWED":
                print("        allowed: " + drivers_corpus.ALLOWED[r["name"]])
            print("        driver:  %-11s %s" % (cl["driver"]["class"], (cl["driver"]["out"] or cl["driver"]["stderr"].splitlines()[-1:] or [""])[0][:220] if not cl["driver"]["out"] else cl["driver"]["out"][:220]))
            print("        pgwait:  %-11s exit %d %s" % (cl["pgwait"]["class"], cl["pgwait"]["rc"],
                                                      (cl["pgwait"]["stderr"].splitlines() or [""])[-1][:220]))
            for client in ("driver", "pgwait"):
                app = app_name_set(case)
                print("        %-8s %s" % (client, " | ".join(short(norm_record(x, app)) for x in cl[client]["records"])
                                         or "(no connection)"))
    elapsed = time.time() - started
    print("\nper driver:")
    for drv, st in per.items():
        print("  %-14s %3d cases: %3d same, %3d differ, %3d allowed, %3d without --driver, %d errors "
              "(driver %.0fs, pgwait %.0fs of client time)" % (
                  drv, st["cases"], st["same"], st["diff"], st["allowed"], st["no-driver"], st["errors"],
                  st["driver_s"], st["pgwait_s"]))
    print("%d cases in %.1fs: %d same, %d allowed differences, %d unexpected differences, "
          "%d without pgwait --driver, %d harness errors" % (
              len(results), elapsed, len(results) - len(unexpected) - len(allowed) - len(errors) - len(nodriver),
              len(allowed), len(unexpected), len(nodriver), len(errors)))
    if nodriver:
        print("pgwait %s has no --driver option: every case is uncompared (exit 1)" % pgwait)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if errors:
        return 2
    return 1 if unexpected or nodriver else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as e:
        print("drivers_diff: error: %s" % e, file=sys.stderr)
        sys.exit(2)
