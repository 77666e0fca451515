#!/usr/bin/env python3
"""pgwait's benchmark: readiness detection side by side with pg_isready loops.

Starts its own PostgreSQL servers (initdb into a temp dir, loopback ports, run as the
`postgres` user when root), builds the static release binary, and prints markdown tables:

  started   server started while the gate waits: app start - "ready to accept connections"
  promoted  57P03 standby (hot_standby=off) promoted after ~10 s: latency, rejections logged
  syndrop   SYNs dropped for 2 s in a private network namespace, then the port opens
  warm      server already up: wall time of `GATE -- true` (pgwait: SCRAM + SELECT 1)
  footprint static binary size; peak RSS while waiting
  lag       --max-lag 16MB on a standby whose replay was paused ~54 MB behind: app start − resume
  stable    --stable-for 1s, server started while waiting: app start − server ready
  herd      schedules: one gate (started 1–2 s later; 57P03 promoted at 1.5–2 s; 57P03 for 10 s),
            herds of N and N/4 gates on a 57P03 server promoted after 5 s, each against the same
            herd released on a ready server (the control: its login queue is the latency floor),
            N gates on a server whose slots are all taken (53300) for 5 s; attempts counted from
            the server's log (log_connections)
  refused   in a private network namespace, SYNs counted by an nftables rule: one gate refused
            for 60 s, N gates refused for 5 s then the server starts
  crash     N gates started while the server is down, then a crash recovery (pgbench -i -s 30, 30 s of
            pgbench -N -c 4, kill -9): server start → ready and redo time against no gates and N psql
            pollers (once a second), also with the server alone on one core; then a cold start
  hostile   exit time with a resolver that never answers and -t 2s; peak RSS against flooding peers

Usage: python3 bench/run.py [--trials N] [--only started,promoted,...] [--herd N] [--baseline BIN]

--baseline runs herd and refused with another pgwait binary too, side by side, e.g. the previous
release built from its commit:
  git worktree add /tmp/pgwait-old REV && (cd /tmp/pgwait-old && RUSTFLAGS='-C target-feature=+crt-static \
    --cfg getrandom_backend="linux_getrandom"' cargo build --release --target x86_64-unknown-linux-gnu)
  python3 bench/run.py --only herd,refused --baseline \
    /tmp/pgwait-old/target/x86_64-unknown-linux-gnu/release/pgwait
Timing belongs here, not in the test suite: this reports, it does not assert.
"""

import argparse
import fcntl
import glob
import os
import pwd
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = "x86_64-unknown-linux-gnu"
PGWAIT = os.path.join(ROOT, "target", TARGET, "release", "pgwait")
STATIC_FLAGS = '-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"'
PASSWORD = "bench-pa55word"
TOOLS = ["pgwait", "pg_isready loop, sleep 1", "pg_isready loop, sleep 0.1"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- machine -----------------------------------------------------------------------------

def pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit("PostgreSQL server binaries not found: apt-get install -y postgresql")
    return os.path.dirname(found[-1])


BIN = pg_bindir()
AS_ROOT = os.getuid() == 0
PG_USER = pwd.getpwnam("postgres") if AS_ROOT else None


def as_server_user():
    if PG_USER:
        os.setgid(PG_USER.pw_gid)
        os.setgroups([])
        os.setuid(PG_USER.pw_uid)


def chown(path):
    if PG_USER:
        for dirpath, dirs, files in os.walk(path):
            for name in [dirpath] + [os.path.join(dirpath, f) for f in dirs + files]:
                os.lchown(name, PG_USER.pw_uid, PG_USER.pw_gid)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build():
    log("building the static release binary ...")
    env = dict(os.environ, RUSTFLAGS=STATIC_FLAGS)
    subprocess.run(["cargo", "build", "--release", "--target", TARGET], cwd=ROOT, env=env, check=True)


# --- clusters ----------------------------------------------------------------------------

class Template:
    def __init__(self, base):
        self.dir = os.path.join(base, "template")
        os.makedirs(base, exist_ok=True)
        os.chmod(base, 0o777)
        subprocess.run([f"{BIN}/initdb", "-D", self.dir, "-U", "postgres", "--auth=trust", "-N", "-E", "UTF8",
                        "--locale=C"], preexec_fn=as_server_user, check=True, stdout=subprocess.DEVNULL)
        sql = f"CREATE ROLE bench LOGIN PASSWORD '{PASSWORD}';\n"
        subprocess.run([f"{BIN}/postgres", "--single", "-D", self.dir, "postgres"], input=sql.encode(),
                       preexec_fn=as_server_user, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        with open(os.path.join(self.dir, "postgresql.conf"), "a") as f:
            f.write("fsync = off\nmax_connections = 300\nlog_line_prefix = '%n '\nlogging_collector = off\n"
                    "log_connections = on\n")


class Cluster:
    def __init__(self, template, base, standby=False, conf=""):
        self.root = tempfile.mkdtemp(dir=base)
        os.chmod(self.root, 0o755)
        self.data = os.path.join(self.root, "data")
        shutil.copytree(template.dir, self.data, symlinks=True)
        if conf:
            with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
                f.write(conf)
        if standby:
            open(os.path.join(self.data, "standby.signal"), "w").close()
            with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
                f.write("hot_standby = off\n")
        chown(self.root)
        self.port = free_port()
        self.log = os.path.join(self.root, "server.log")
        self.proc = None

    def start(self):
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [f"{BIN}/postgres", "-D", self.data, "-p", str(self.port), "-k", self.root,
             "-c", "listen_addresses=127.0.0.1"],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL, preexec_fn=as_server_user)

    def wait_listening(self, limit=30):
        until = time.time() + limit
        while time.time() < until:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("server never listened")

    def wait_ready(self, limit=30):
        until = time.time() + limit
        while time.time() < until:
            if self.ready_times():
                return
            time.sleep(0.01)
        raise RuntimeError("server never became ready")

    def lines(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def ready_times(self):
        return [float(l.split()[0]) for l in self.lines() if "ready to accept connections" in l]

    def rejections(self):
        """Timestamps of FATAL lines: one per rejected connection attempt."""
        return [float(l.split()[0]) for l in self.lines() if " FATAL: " in l]

    def connections(self):
        """Timestamps of log_connections' "connection received" lines: every attempt that reached
        the server, rejected or not."""
        return [float(l.split()[0]) for l in self.lines() if "connection received:" in l]

    def promote(self):
        subprocess.run([f"{BIN}/pg_ctl", "promote", "-D", self.data], preexec_fn=as_server_user, check=True,
                       stdout=subprocess.DEVNULL)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


# --- gates -------------------------------------------------------------------------------

def gate(tool, port, marker, counter, verbose=True, binary=None):
    """A process that waits for the server, then runs the app: `date +%s.%N > marker`."""
    app = f"date +%s.%N > {marker}"
    env = dict(PATH=os.environ["PATH"], PGPASSWORD=PASSWORD)
    if tool == "pgwait":
        cmd = [binary or PGWAIT, "-v" if verbose else "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "bench", "-d",
               "postgres", "-t", "120s", "--", "sh", "-c", app]
        return subprocess.Popen(cmd, env=env, stderr=open(counter, "w"), stdout=subprocess.DEVNULL)
    pause = "1" if tool.endswith("sleep 1") else "0.1"
    loop = (f"n=1; until {BIN}/pg_isready -q -h 127.0.0.1 -p {port} -U bench -d postgres; "
            f"do n=$((n+1)); sleep {pause}; done; {app}; echo $n > {counter}")
    return subprocess.Popen(["sh", "-c", loop], env=env)


def attempts(tool, counter):
    with open(counter) as f:
        text = f.read()
    if tool == "pgwait":
        return sum(1 for l in text.splitlines() if l.startswith("pgwait: attempt ")) + 1
    return int(text.strip() or 0)


def read_marker(marker):
    with open(marker) as f:
        return float(f.read().strip())


def finish(proc, limit=120):
    try:
        proc.wait(limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


# --- statistics and tables ---------------------------------------------------------------

def summary(values):
    return statistics.median(values), min(values), max(values)


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    sys.stdout.flush()


def ms(x):
    return f"{x * 1000:.1f} ms"


def latency_rows(results, extra=None):
    base = statistics.median(results["pgwait"]["latency"])
    rows = []
    for tool in TOOLS:
        r = results[tool]
        med, lo, hi = summary(r["latency"])
        ratio = f"{med / base:.1f}x" if base > 0 else "-"
        row = [tool, ms(med), ms(lo), ms(hi), f"{statistics.median(r['attempts']):.0f}", ratio]
        if extra:
            row += extra(r)
        rows.append(row)
    return rows


# --- scenarios ---------------------------------------------------------------------------

def scenario_started(template, base, trials):
    results = {t: {"latency": [], "attempts": []} for t in TOOLS}
    for trial in range(trials):
        for tool in random.sample(TOOLS, len(TOOLS)):
            c = Cluster(template, base)
            marker, counter = os.path.join(c.root, "marker"), os.path.join(c.root, "count")
            g = gate(tool, c.port, marker, counter)
            time.sleep(random.uniform(0.2, 1.2))
            c.start()
            finish(g)
            results[tool]["latency"].append(read_marker(marker) - c.ready_times()[-1])
            results[tool]["attempts"].append(attempts(tool, counter))
            c.stop()
        log(f"started: trial {trial + 1}/{trials}")
    table("Server started while waiting (app start − server ready)",
          ["gate", "median", "min", "max", "attempts", "vs pgwait"], latency_rows(results))


def scenario_promoted(template, base, trials, phase=10.0):
    results = {t: {"latency": [], "attempts": [], "early": 0, "per_s": []} for t in TOOLS}
    for trial in range(trials):
        for tool in random.sample(TOOLS, len(TOOLS)):
            c = Cluster(template, base, standby=True)
            c.start()
            c.wait_listening()
            marker, counter = os.path.join(c.root, "marker"), os.path.join(c.root, "count")
            began = time.time()
            g = gate(tool, c.port, marker, counter)
            time.sleep(phase + random.uniform(0, 0.5))
            c.promote()
            finish(g)
            ready = c.ready_times()[-1]
            start = read_marker(marker)
            r = results[tool]
            r["latency"].append(start - ready)
            r["early"] += start < ready
            rejected = [t for t in c.rejections() if began <= t <= ready]
            r["attempts"].append(len(rejected) + 1)
            r["per_s"].append(len(rejected) / max(ready - began, 1e-9))
            c.stop()
        log(f"promoted: trial {trial + 1}/{trials}")
    extra = lambda r: [f"{statistics.median(r['per_s']):.1f}", str(r["early"])]
    table(f"57P03 standby promoted after ~{phase:.0f} s (app start − ready; attempts = rejections logged)",
          ["gate", "median", "min", "max", "attempts", "vs pgwait", "rejections/s", "started before ready"],
          latency_rows(results, extra))


def psql(cluster, sql):
    out = subprocess.run([f"{BIN}/psql", "-X", "-At", "-h", cluster.root, "-p", str(cluster.port), "-U", "postgres",
                          "-d", "postgres", "-c", sql], preexec_fn=as_server_user, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{sql}: {out.stderr}")
    return out.stdout.strip()


def scenario_lag(template, base, trials):
    """--max-lag 16MB on a standby whose replay was paused ~50 MB behind: app start − resume."""
    gaps, attempts_seen = [], []
    for trial in range(trials):
        primary = Cluster(template, base, conf="wal_level = replica\n")
        with open(os.path.join(primary.data, "pg_hba.conf"), "a") as f:
            f.write("local replication all trust\n")
        primary.start()
        primary.wait_ready()
        standby = Cluster(template, base)
        shutil.rmtree(standby.data)
        chown(standby.root)
        subprocess.run([f"{BIN}/pg_basebackup", "-D", standby.data, "-R", "-X", "stream", "-c", "fast", "-h",
                        primary.root, "-p", str(primary.port), "-U", "postgres"], preexec_fn=as_server_user,
                       check=True, stdout=subprocess.DEVNULL)
        standby.start()
        until = time.time() + 30
        while subprocess.run([f"{BIN}/pg_isready", "-q", "-h", standby.root, "-p", str(standby.port)]).returncode:
            if time.time() > until:
                raise RuntimeError("the standby never accepted connections")
            time.sleep(0.05)
        psql(standby, "SELECT pg_wal_replay_pause()")
        psql(primary, "CREATE TABLE big AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 100000) g")
        until = time.time() + 30
        while psql(standby, "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) "
                            "> 32 * 1024 * 1024") != "t":
            if time.time() > until:
                raise RuntimeError("the standby never received the WAL")
            time.sleep(0.05)
        marker, counter = os.path.join(standby.root, "marker"), os.path.join(standby.root, "count")
        env = dict(PATH=os.environ["PATH"], PGPASSWORD=PASSWORD)
        g = subprocess.Popen([PGWAIT, "-v", "-h", "127.0.0.1", "-p", str(standby.port), "-U", "bench", "-d", "postgres",
                              "-t", "120s", "--max-lag", "16MB", "--", "sh", "-c", f"date +%s.%N > {marker}"],
                             env=env, stderr=open(counter, "w"), stdout=subprocess.DEVNULL)
        time.sleep(random.uniform(2.0, 3.0))
        resumed = time.time()
        psql(standby, "SELECT pg_wal_replay_resume()")
        finish(g)
        gaps.append(read_marker(marker) - resumed)
        attempts_seen.append(attempts("pgwait", counter))
        standby.stop()
        primary.stop()
        log(f"lag: trial {trial + 1}/{trials}")
    med, lo, hi = summary(gaps)
    table("Standby replay paused ~54 MB behind, --max-lag 16MB (app start − replay resumed)",
          ["median", "min", "max", "attempts (median)"],
          [[ms(med), ms(lo), ms(hi), str(int(statistics.median(attempts_seen)))]])


def scenario_stable(template, base, trials, span=1.0):
    """A server started while waiting, with --stable-for: app start − server ready, and attempts."""
    gaps, tries = [], []
    for trial in range(trials):
        c = Cluster(template, base)
        marker, counter = os.path.join(c.root, "marker"), os.path.join(c.root, "count")
        env = dict(PATH=os.environ["PATH"], PGPASSWORD=PASSWORD)
        g = subprocess.Popen([PGWAIT, "-v", "-h", "127.0.0.1", "-p", str(c.port), "-U", "bench", "-d", "postgres",
                              "-t", "120s", "--stable-for", f"{span}s", "--", "sh", "-c", f"date +%s.%N > {marker}"],
                             env=env, stderr=open(counter, "w"), stdout=subprocess.DEVNULL)
        time.sleep(random.uniform(0.2, 1.2))
        c.start()
        finish(g)
        gaps.append(read_marker(marker) - c.ready_times()[-1])
        with open(counter) as f:
            tries.append(sum(1 for l in f if "checking that it stays up" in l) + 1)
        c.stop()
        log(f"stable: trial {trial + 1}/{trials}")
    med, lo, hi = summary(gaps)
    table(f"Server started while waiting, --stable-for {span:.0f}s (app start − server ready)",
          ["median", "min", "max", "successes in the run (median)"],
          [[ms(med), ms(lo), ms(hi), str(int(statistics.median(tries)))]])


def scenario_syndrop(trials):
    """Re-runs this script inside `unshare -n` so the firewall rule and sysctl stay private."""
    if shutil.which("nft") is None:
        log("installing nftables for the SYN-drop scenario ...")
        subprocess.run(["apt-get", "install", "-y", "-qq", "nftables"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__), "--inner-syndrop",
                    "--trials", str(trials)], check=True)


def inner_syndrop(template, base, trials, drop=2.0):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    sysctl = "/proc/sys/net/ipv4/tcp_syn_linear_timeouts"
    if os.path.exists(sysctl):
        with open(sysctl, "w") as f:
            f.write("0")
    results = {t: {"latency": [], "attempts": []} for t in TOOLS}
    c = Cluster(template, base)
    c.start()
    c.wait_ready()
    rule = (f"table inet pgwaitbench {{\n chain input {{\n  type filter hook input priority 0;\n"
            f"  tcp dport {c.port} tcp flags & (syn|ack) == syn drop\n }}\n}}\n")
    for trial in range(trials):
        for tool in random.sample(TOOLS, len(TOOLS)):
            subprocess.run(["nft", "-f", "-"], input=rule.encode(), check=True)
            marker, counter = os.path.join(c.root, "marker"), os.path.join(c.root, "count")
            for path in (marker, counter):
                if os.path.exists(path):
                    os.remove(path)
            g = gate(tool, c.port, marker, counter)
            time.sleep(drop)
            opened = time.time()
            subprocess.run(["nft", "delete", "table", "inet", "pgwaitbench"], check=True)
            finish(g)
            results[tool]["latency"].append(read_marker(marker) - opened)
            results[tool]["attempts"].append(attempts(tool, counter))
        log(f"syndrop: trial {trial + 1}/{trials}")
    c.stop()
    table(f"SYNs dropped {drop:.0f} s, then the port opens (app start − port open; tcp_syn_linear_timeouts=0)",
          ["gate", "median", "min", "max", "attempts", "vs pgwait"], latency_rows(results))


def scenario_warm(template, base, runs=40):
    c = Cluster(template, base)
    c.start()
    c.wait_ready()
    env = dict(PATH=os.environ["PATH"], PGPASSWORD=PASSWORD)
    # A Django history table (django/db/migrations/recorder.py) for the --migrations figure.
    setup = ("CREATE TABLE django_migrations (id bigserial PRIMARY KEY, app varchar(255) NOT NULL, "
             "name varchar(255) NOT NULL, applied timestamptz NOT NULL); "
             "INSERT INTO django_migrations (app, name, applied) VALUES ('auth', '0012_alter', now()); "
             "GRANT SELECT ON django_migrations TO bench")
    subprocess.run([f"{BIN}/psql", "-X", "-q", "-h", c.root, "-p", str(c.port), "-U", "postgres", "-d", "postgres",
                    "-c", setup], check=True)
    gate = [PGWAIT, "-q", "-h", "127.0.0.1", "-p", str(c.port), "-U", "bench", "-d", "postgres"]
    commands = {
        "pgwait -- true (SCRAM + SELECT 1)": gate + ["--", "true"],
        "pgwait --migrations django:auth.0012_alter -- true": gate + ["--migrations", "django:auth.0012_alter",
                                                                      "--", "true"],
        # The cost of a password made per attempt: one fork+exec of a tiny program (no shell).
        "pgwait --password-command 'printf PW' -- true": gate + ["--password-command", f"printf {PASSWORD}",
                                                                "--", "true"],
        "pg_isready (no auth, no query)": [f"{BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(c.port)],
    }
    # --password-command and PGPASSWORD together are a usage error: that row gets no PGPASSWORD.
    bare = dict(PATH=os.environ["PATH"])
    times = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in random.sample(list(commands.items()), len(commands)):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=bare if "--password-command" in cmd else env, check=True,
                           stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t0)
    c.stop()
    base = statistics.median(times["pg_isready (no auth, no query)"])
    rows = []
    for name, t in times.items():
        med, lo, hi = summary(t)
        rows.append([name, ms(med), ms(lo), ms(hi), f"{med / base:.2f}x"])
    table(f"Server already up: whole command wall time ({runs} runs each)",
          ["command", "median", "min", "max", "vs pg_isready"], rows)


def peak_rss_kib(cmd, settle=2.0):
    p = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env=dict(PATH=os.environ["PATH"], PGPASSWORD=PASSWORD))
    time.sleep(settle)
    with open(f"/proc/{p.pid}/status") as f:
        fields = dict(l.split(":", 1) for l in f if ":" in l)
    p.terminate()
    p.wait()
    return int(fields["VmHWM"].split()[0])


def scenario_footprint(template, base):
    size = os.path.getsize(PGWAIT)
    static = "statically linked" in subprocess.run(["ldd", PGWAIT], capture_output=True, text=True).stdout + \
             subprocess.run(["ldd", PGWAIT], capture_output=True, text=True).stderr
    refused = peak_rss_kib([PGWAIT, "-h", "127.0.0.1", "-p", str(free_port()), "-t", "0"])
    c = Cluster(template, base, standby=True)
    c.start()
    c.wait_listening()
    rejected = peak_rss_kib([PGWAIT, "-h", "127.0.0.1", "-p", str(c.port), "-U", "bench", "-d", "postgres",
                             "-t", "0"], settle=3.0)
    c.stop()
    table("Footprint", ["figure", "value"], [
        ["static release binary (with TLS)", f"{size / 1048576:.2f} MiB ({size} bytes){'' if static else ' NOT STATIC'}"],
        ["peak RSS while waiting (refused)", f"{refused / 1024:.2f} MiB"],
        ["peak RSS while waiting (57P03, SCRAM user)", f"{rejected / 1024:.2f} MiB"],
    ])


# --- herds: many gates on one server, this build side by side with a baseline build ------------

def release(binary, port, count, root):
    """Starts `count` gates as fast as the machine can; returns when the first was started."""
    began = time.time()
    gates = []
    for i in range(count):
        marker = os.path.join(root, f"marker{i}")
        gates.append((gate("pgwait", port, marker, os.devnull, verbose=False, binary=binary), marker))
    return began, gates


def settle(gates):
    for g, _ in gates:
        finish(g)
    return [read_marker(m) for _, m in gates]


def per_second(times, start, end):
    """Counts per whole second from `start`, full seconds inside [start, end) only."""
    buckets = [0] * max(int(end - start), 0)
    for t in times:
        i = int(t - start)
        if 0 <= i < len(buckets):
            buckets[i] += 1
    return buckets


def herd_control(template, base, binary, count):
    """The floor: `count` gates released against an already-ready server (app start − release)."""
    c = Cluster(template, base)
    c.start()
    c.wait_ready()
    began, gates = release(binary, c.port, count, c.root)
    starts = sorted(t - began for t in settle(gates))
    c.stop()
    return dict(median=statistics.median(starts), max=starts[-1])


def herd_not_ready(template, base, binary, count, phase):
    """`count` gates on a 57P03 standby (hot_standby=off) promoted after `phase` seconds."""
    c = Cluster(template, base, standby=True)
    c.start()
    c.wait_listening()
    began, gates = release(binary, c.port, count, c.root)
    time.sleep(phase)
    c.promote()
    starts = settle(gates)
    ready = c.ready_times()[-1]
    late = sorted(t - ready for t in starts)
    attempts = [t for t in c.connections() if began <= t <= ready]
    c.stop()
    return dict(rate=len(attempts) / (ready - began), busiest=max(per_second(attempts, began, ready), default=0),
                median=statistics.median(late), max=late[-1], early=sum(1 for x in late if x < 0))


def hold_slots(c, n):
    """`n` idle sessions as `bench` over the socket; closing their stdin ends them. Counted from
    the log (log_connections), since a counting session would itself take a slot."""
    holders = [subprocess.Popen([f"{BIN}/psql", "-X", "-q", "-h", c.root, "-p", str(c.port), "-U", "bench",
                                 "-d", "postgres"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
               for _ in range(n)]
    until = time.time() + 30
    while time.time() < until:
        if sum(1 for l in c.lines() if "connection authorized: user=bench" in l) >= n:
            return holders
        time.sleep(0.05)
    raise RuntimeError("could not hold the connection slots")


def herd_overloaded(template, base, binary, count, phase, slots=37):
    """`count` gates on a server whose slots are all taken (53300) for `phase` s, then freed."""
    c = Cluster(template, base, conf=f"max_connections = {slots + 3}\nsuperuser_reserved_connections = 3\n")
    c.start()
    c.wait_ready()
    holders = hold_slots(c, slots)
    began, gates = release(binary, c.port, count, c.root)
    time.sleep(phase)
    freed = time.time()
    for h in holders:
        h.stdin.close()
    for h in holders:
        h.wait()
    starts = settle(gates)
    full = [float(l.split()[0]) for l in c.lines() if "too many clients" in l]
    during = [t for t in full if began <= t < freed]
    c.stop()
    return dict(rate=len(during) / (freed - began), busiest=max(per_second(during, began, freed), default=0),
                all_ready=max(starts) - freed, after=sum(1 for t in full if t >= freed))


def single_not_ready(template, base, binary, phase, trials):
    """One gate on a 57P03 standby promoted after `phase` (+0–0.5) s: latency and attempts."""
    late, attempts = [], []
    for _ in range(trials):
        c = Cluster(template, base, standby=True)
        c.start()
        c.wait_listening()
        began, gates = release(binary, c.port, 1, c.root)
        time.sleep(phase + random.uniform(0, 0.5))
        c.promote()
        start = settle(gates)[0]
        ready = c.ready_times()[-1]
        late.append(start - ready)
        attempts.append(len([t for t in c.connections() if began <= t <= ready]))
        c.stop()
    return dict(median=statistics.median(late), max=max(late), attempts=statistics.median(attempts))


def single_started(template, base, binary, trials):
    """One gate, the server started 1–2 s after it: app start − ready."""
    late = []
    for _ in range(trials):
        c = Cluster(template, base)
        began, gates = release(binary, c.port, 1, c.root)
        time.sleep(random.uniform(1.0, 2.0))
        c.start()
        start = settle(gates)[0]
        late.append(start - c.ready_times()[-1])
        c.stop()
    return dict(median=statistics.median(late), max=max(late))


def side_by_side(title, rows, builds):
    """rows: (figure, target, function of a build's results → text)."""
    header = ["figure"] + list(builds) + ["target"]
    table(title, header, [[name] + [show(r) for r in builds.values()] + [target] for name, target, show in rows])


def scenario_herd(template, base, count, baseline, trials):
    binaries = {"this build": PGWAIT}
    if baseline:
        binaries = {"baseline": baseline, **binaries}
    fifty = max(count // 4, 1)
    got = {}
    for name, binary in binaries.items():
        log(f"herd: {name} ...")
        got[name] = dict(
            started=single_started(template, base, binary, trials),
            promoted=single_not_ready(template, base, binary, 1.5, trials),
            long=single_not_ready(template, base, binary, 10.0, 1),
            control=herd_control(template, base, binary, count),
            herd=herd_not_ready(template, base, binary, count, 5.0),
            control50=herd_control(template, base, binary, fifty),
            herd50=herd_not_ready(template, base, binary, fifty, 5.0),
            full=herd_overloaded(template, base, binary, count, 5.0),
        )
    side_by_side(f"Schedules, one gate and herds of {count} and {fifty} (attempts = log_connections lines)", [
        ("one gate, server started 1–2 s later: app start − ready (median)", "≤ 20 ms",
         lambda r: ms(r["started"]["median"])),
        ("one gate, 57P03 promoted at 1.5–2 s: app start − ready (median)", "≤ 150 ms",
         lambda r: ms(r["promoted"]["median"])),
        ("one gate, 57P03 for 10 s: attempts", "≤ 40", lambda r: f"{r['long']['attempts']:.0f}"),
        (f"{count} gates, ready server (control): app start − release, median / max", "-",
         lambda r: f"{ms(r['control']['median'])} / {ms(r['control']['max'])}"),
        (f"{count} gates, 57P03 5 s: attempts/s mean (busiest second)", "≤ 300",
         lambda r: f"{r['herd']['rate']:.0f} ({r['herd']['busiest']})"),
        (f"{count} gates, 57P03 5 s: app start − ready, median / max", "≤ control + 150 ms",
         lambda r: f"{ms(r['herd']['median'])} / {ms(r['herd']['max'])}"),
        (f"{count} gates, 57P03 5 s: started before ready", "0", lambda r: str(r["herd"]["early"])),
        (f"{fifty} gates, ready server (control): max", "-", lambda r: ms(r["control50"]["max"])),
        (f"{fifty} gates, 57P03 5 s: app start − ready, max", "≤ control + 150 ms",
         lambda r: ms(r["herd50"]["max"])),
        (f"{count} gates, 53300 for 5 s: rejections/s mean (busiest second)", "≤ 150",
         lambda r: f"{r['full']['rate']:.0f} ({r['full']['busiest']})"),
        (f"{count} gates, 53300 for 5 s: all ready within (after slots free)", "≤ 3 s",
         lambda r: ms(r["full"]["all_ready"])),
    ], got)


# --- crash recovery: a herd against a server replaying WAL ----------------------------------

def children_of(pid):
    """PIDs whose parent is `pid` (the postmaster's backends and auxiliaries)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def crashed_datadir(template, base, scale=30, load_s=30):
    """A data directory left by `kill -9` of the postmaster with `load_s` seconds of
    `pgbench -N -c 4` to replay (checkpoint_timeout = 1h, max_wal_size = 4GB): made once, copied
    for every trial so each replays the same WAL."""
    log(f"crash: pgbench -i -s {scale}, then {load_s} s of pgbench -N -c 4, then kill -9 ...")
    c = Cluster(template, base, conf="checkpoint_timeout = 1h\nmax_wal_size = 4GB\nlog_connections = off\n")
    c.start()
    c.wait_ready()
    conn = ["-h", c.root, "-p", str(c.port), "-U", "postgres"]
    subprocess.run([f"{BIN}/pgbench", "-i", "-q", "-s", str(scale)] + conn + ["postgres"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    psql(c, "CHECKPOINT")
    subprocess.run([f"{BIN}/pgbench", "-N", "-c", "4", "-j", "2", "-T", str(load_s)] + conn + ["postgres"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids = children_of(c.proc.pid)
    c.proc.kill()
    c.proc.wait()
    until = time.time() + 30
    while any(os.path.exists(f"/proc/{k}") for k in kids) and time.time() < until:
        time.sleep(0.05)
    crashed = os.path.join(base, "crashed")
    subprocess.run(["cp", "-a", c.data, crashed], check=True)
    with open(os.path.join(crashed, "postgresql.conf"), "a") as f:
        f.write("log_connections = on\n")
    c.proc = None
    c.stop()
    return crashed


def pinned(cpu, cmd):
    return ["taskset", "-c", str(cpu)] + cmd if cpu is not None else cmd


def poller(port, marker, pause="1"):
    """The naive gate: psql every `pause` seconds until it gets in."""
    loop = (f"until {BIN}/psql -X -q -h 127.0.0.1 -p {port} -U bench -d postgres -c 'SELECT 1' "
            f">/dev/null 2>&1; do sleep {pause}; done; date +%s.%N > {marker}")
    return subprocess.Popen(["sh", "-c", loop], env=dict(PATH=os.environ["PATH"], PGPASSWORD=PASSWORD))


def recovery_trial(source, base, kind, count, binary=None, pin=False):
    """Copies `source` (crashed or clean), starts `count` gates of `kind` (pgwait, psql, none)
    against its port while nothing listens, then starts the server: the server's start → ready,
    its redo time, the attempts it saw while recovering, and each gate's app start − ready."""
    root = tempfile.mkdtemp(dir=base)
    os.chmod(root, 0o755)
    data = os.path.join(root, "data")
    subprocess.run(["cp", "-a", source, data], check=True)
    chown(root)
    # The copy's writeback must not compete with the recovery being measured.
    subprocess.run(["sync"], check=True)
    port, logpath = free_port(), os.path.join(root, "server.log")
    gates = []
    for i in range(count):
        marker = os.path.join(root, f"marker{i}")
        if kind.startswith("psql"):
            # "psql" polls once a second, "psql:0.5" every half second, and so on.
            gates.append((poller(port, marker, kind.partition(":")[2] or "1"), marker))
            continue
        cmd = [binary or PGWAIT, "-q", "-d", f"postgres://bench@127.0.0.1:{port}/postgres", "-t", "120s",
               "--", "sh", "-c", f"date +%s.%N > {marker}"]
        gates.append((subprocess.Popen(pinned(1 if pin else None, cmd), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL,
                                       env=dict(PATH=os.environ["PATH"], PGPASSWORD=PASSWORD)), marker))
    time.sleep(1.0 if count else 0.0)
    out = open(logpath, "ab")
    began = time.time()
    server = subprocess.Popen(pinned(0 if pin else None, [f"{BIN}/postgres", "-D", data, "-p", str(port),
                                                          "-k", root, "-c", "listen_addresses=127.0.0.1"]),
                              stdout=out, stderr=out, stdin=subprocess.DEVNULL, preexec_fn=as_server_user)

    def lines():
        with open(logpath, errors="replace") as f:
            return f.read().splitlines()
    until = time.time() + 120
    while not any("ready to accept connections" in l for l in lines()):
        if time.time() > until:
            raise RuntimeError("the server never became ready")
        time.sleep(0.01)
    ready = next(float(l.split()[0]) for l in lines() if "ready to accept connections" in l)
    starts = []
    for g, m in gates:
        finish(g)
        starts.append(read_marker(m))
    text = lines()
    redo = next((float(l.split("elapsed: ")[1].split()[0]) for l in text if "redo done at" in l and "elapsed: " in l),
                0.0)
    attempts = [float(l.split()[0]) for l in text if "connection received:" in l]
    during = [t for t in attempts if t <= ready]
    server.send_signal(signal.SIGINT)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    shutil.rmtree(root, ignore_errors=True)
    late = sorted(t - ready for t in starts)
    return dict(recovery=ready - began, redo=redo, rate=len(during) / max(ready - began, 1e-3),
                first=sum(1 for t in during if t < began + 1.0), during=len(during),
                median=statistics.median(late) if late else 0.0, max=late[-1] if late else 0.0,
                early=sum(1 for x in late if x < 0))


def scenario_crash(template, base, count, baseline, trials):
    """200 gates started while the server is down, then a crash recovery of ~2.5 s, side by side
    with no gates (control) and `count` psql pollers; then with the server on one core and the
    gates on the other; then a cold start (a clean data directory) and the same herds."""
    crashed = crashed_datadir(template, base)
    kinds = [("control (no gates)", "none", None)]
    if baseline:
        kinds.append(("pgwait baseline", "pgwait", baseline))
    kinds += [("pgwait", "pgwait", PGWAIT), ("psql once a second", "psql", None)]
    rows_of = {}
    for pin in (False, True):
        for label, kind, binary in kinds:
            got = [recovery_trial(crashed, base, kind, 0 if kind == "none" else count, binary, pin)
                   for _ in range(trials)]
            rows_of[(pin, label)] = got
            log(f"crash{' pinned' if pin else ''} {label}: " +
                ", ".join(f"{g['recovery']:.2f}s" for g in got))
    cold = {label: [recovery_trial(template.dir, base, kind, 0 if kind == "none" else count, binary)
                    for _ in range(trials)] for label, kind, binary in kinds}

    def med(runs, key):
        return statistics.median(r[key] for r in runs)
    rows = []
    for pin, title in ((False, "server and gates share 2 cores"), (True, "server alone on core 0, gates on core 1")):
        control = med(rows_of[(pin, "control (no gates)")], "recovery")
        control_redo = med(rows_of[(pin, "control (no gates)")], "redo")
        for label, _, _ in kinds:
            runs = rows_of[(pin, label)]
            rec, redo = med(runs, "recovery"), med(runs, "redo")
            late = "-" if label.startswith("control") else f"{ms(med(runs, 'median'))} / {ms(max(r['max'] for r in runs))}"
            rate = "-" if label.startswith("control") else f"{med(runs, 'rate'):.0f} ({med(runs, 'first'):.0f} in the 1st s)"
            rows.append([title, label, f"{rec:.2f} s ({rec / control:.2f}×)", f"{redo:.2f} s ({redo / max(control_redo, 1e-3):.2f}×)",
                         rate, late])
    control = med(cold["control (no gates)"], "recovery")
    for label, _, _ in kinds:
        runs = cold[label]
        rec = med(runs, "recovery")
        late = "-" if label.startswith("control") else f"{ms(med(runs, 'median'))} / {ms(max(r['max'] for r in runs))}"
        rows.append(["cold start (clean data directory)", label, f"{rec:.2f} s ({rec / control:.2f}×)", "-", "-", late])
    table(f"Crash recovery with {count} gates (median of {trials} trials; app start − ready: median / max over all trials)",
          ["set-up", "gates", "server start → ready", "redo", "attempts/s while recovering", "app start − ready"],
          rows)


def scenario_refused(baseline, count):
    """Re-runs this script inside `unshare -n`: the SYN counter and the port stay private."""
    if shutil.which("nft") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "nftables"], check=True, stdout=subprocess.DEVNULL)
    extra = ["--herd", str(count)] + (["--baseline", baseline] if baseline else [])
    subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__), "--inner-refused"] + extra,
                   check=True)


def syn_counter(port):
    rule = (f"table inet pgwaitsyn {{\n chain input {{\n  type filter hook input priority 0;\n"
            f"  tcp dport {port} tcp flags & (syn|ack) == syn counter\n }}\n}}\n")
    subprocess.run(["nft", "-f", "-"], input=rule.encode(), check=True)

    def read():
        out = subprocess.run(["nft", "list", "table", "inet", "pgwaitsyn"], capture_output=True, text=True).stdout
        return int(out.split("counter packets ")[1].split()[0])

    def drop():
        subprocess.run(["nft", "delete", "table", "inet", "pgwaitsyn"], check=True)
    return read, drop


def refused_herd(template, base, binary, count, phase):
    c = Cluster(template, base)
    read, drop = syn_counter(c.port)
    began, gates = release(binary, c.port, count, c.root)
    time.sleep(max(2.0 - (time.time() - began), 0))
    at2 = read()
    time.sleep(max(phase - (time.time() - began), 0))
    at_end = read()
    c.start()
    starts = settle(gates)
    ready = c.ready_times()[-1]
    late = sorted(t - ready for t in starts)
    drop()
    c.stop()
    return dict(first=at2 / 2.0, after=(at_end - at2) / (phase - 2.0), median=statistics.median(late),
                max=late[-1])


def refused_long(template, base, binary, outage=60.0):
    c = Cluster(template, base)
    read, drop = syn_counter(c.port)
    began, gates = release(binary, c.port, 1, c.root)
    time.sleep(outage - 10.0)
    before = read()
    time.sleep(max(outage - (time.time() - began), 0))
    last = read() - before
    c.start()
    start = settle(gates)[0]
    late = start - c.ready_times()[-1]
    drop()
    c.stop()
    return dict(rate=last / 10.0, late=late)


def inner_refused(template, base, baseline, count=200):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    binaries = {"this build": PGWAIT}
    if baseline:
        binaries = {"baseline": baseline, **binaries}
    got = {}
    for name, binary in binaries.items():
        log(f"refused: {name} ...")
        got[name] = dict(herd=refused_herd(template, base, binary, count, 5.0),
                         long=refused_long(template, base, binary))
    side_by_side("Refused port (SYNs counted by nftables in a private network namespace)", [
        ("one gate, refused 60 s: SYNs/s over the last 10 s", "≤ 5", lambda r: f"{r['long']['rate']:.1f}"),
        ("one gate, refused 60 s: app start − ready", "-", lambda r: ms(r["long"]["late"])),
        (f"{count} gates, refused 5 s: SYNs/s in the first 2 s", "-", lambda r: f"{r['herd']['first']:.0f}"),
        (f"{count} gates, refused 5 s: SYNs/s after the first 2 s", "≤ 2,000", lambda r: f"{r['herd']['after']:.0f}"),
        (f"{count} gates, refused 5 s then started: app start − ready, median / max", "-",
         lambda r: f"{ms(r['herd']['median'])} / {ms(r['herd']['max'])}"),
    ], got)


def silent_dns(address="127.83.84.85"):
    """A UDP 'DNS server' on port 53 of a loopback address that swallows every query."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    threading.Thread(target=lambda: [sock.recvfrom(1500) for _ in iter(int, 1)], daemon=True).start()
    return address


def hung_resolver_exit(base, runs):
    """Wall time of `pgwait -t 2s` whose resolver never answers (private mount namespace)."""
    dns = silent_dns()
    resolv, nsswitch = os.path.join(base, "resolv.conf"), os.path.join(base, "nsswitch.conf")
    with open(resolv, "w") as f:
        f.write(f"nameserver {dns}\noptions timeout:30 attempts:2\n")
    with open(nsswitch, "w") as f:
        f.write("hosts: dns\n")
    script = ('mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/nsswitch.conf && '
              'exec "$3" -q -h db.pgwait-bench.example -t 2s')
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                        resolv, nsswitch, PGWAIT], env={}, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return times


def message(kind, body):
    return kind + (len(body) + 4).to_bytes(4, "big") + body


def flood_peer(kind):
    """A loopback listener answering the startup (after 'N' to SSLRequest) with a flood."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve(conn):
        try:
            while True:
                n = int.from_bytes(conn.recv(4, socket.MSG_WAITALL), "big")
                body = conn.recv(n - 4, socket.MSG_WAITALL)
                if body[:4] != b"\x04\xd2\x16\x2f":
                    break
                conn.sendall(b"N")
            auth_ok = message(b"R", b"\0\0\0\0")
            if kind == "length":
                conn.sendall(b"R\x7f\xff\xff\xff")
                chunk = b"\0" * 65536
            elif kind == "notices":
                conn.sendall(auth_ok)
                chunk = message(b"N", b"SNOTICE\0Mhello\0\0") * 2000
            elif kind == "parameters":
                conn.sendall(auth_ok)
                i = 0
                while True:
                    conn.sendall(b"".join(message(b"S", f"p{i + j}\0v\0".encode()) for j in range(500)))
                    i += 500
            else:
                conn.sendall(auth_ok + message(b"Z", b"I"))
                conn.recv(65536)
                # One text column "c": table oid, attnum, type oid 25, typlen -1, typmod -1, format.
                field = b"c\0" + b"\0" * 6 + (25).to_bytes(4, "big") + b"\xff" * 6 + b"\0\0"
                conn.sendall(message(b"T", b"\0\x01" + field))
                chunk = message(b"D", b"\0\x01\0\0\0\x011") * 5000
            while True:
                conn.sendall(chunk)
        except OSError:
            pass

    threading.Thread(target=lambda: [threading.Thread(target=serve, args=(listener.accept()[0],),
                                                      daemon=True).start() for _ in iter(int, 1)],
                     daemon=True).start()
    return listener.getsockname()[1]


def peak_rss_at_first_line(cmd):
    """Runs cmd with stderr on a full one-page pipe: it blocks writing its first line with all its
    memory still held; VmHWM is read then."""
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"." * 512)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    p = subprocess.Popen(cmd, stderr=w, env={})
    os.close(w)
    peak = 0
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = int(line.split()[1])
            with open(f"/proc/{p.pid}/wchan") as f:
                if "pipe_write" in f.read():
                    break
        except OSError:
            break
        time.sleep(0.002)
    with os.fdopen(r, "rb") as f:
        f.read()
    p.wait()
    return peak, p.returncode


def scenario_hostile(base, runs=5):
    times = hung_resolver_exit(base, runs)
    med, lo, hi = summary(times)
    rows = [["exit time, resolver never answers, -t 2s", f"median {ms(med)}, max {ms(hi)} (over: {ms(hi - 2.0)})"]]
    for kind, name in [("length", "2 GiB message length"), ("notices", "NoticeResponse flood"),
                       ("parameters", "ParameterStatus flood"), ("rows", "DataRow flood")]:
        port = flood_peer(kind)
        peak, code = peak_rss_at_first_line([PGWAIT, "-h", "127.0.0.1", "-p", str(port), "-U", "app",
                                             "-d", "app", "-t", "20s", "--connect-timeout", "10s"])
        rows.append([f"peak RSS, {name}", f"{peak / 1024:.2f} MiB (exit {code})"])
    table("Hostile inputs", ["figure", "value"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--only", default="started,promoted,syndrop,warm,footprint,lag,stable,herd,refused,crash,hostile")
    ap.add_argument("--herd", type=int, default=200)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--baseline", help="another pgwait binary (e.g. the previous release) for side-by-side herds")
    ap.add_argument("--inner-syndrop", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--inner-refused", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="pgwait-bench-")
    os.chmod(base, 0o777)
    try:
        template = Template(base)
        if args.inner_syndrop:
            inner_syndrop(template, base, args.trials)
            return
        if args.inner_refused:
            inner_refused(template, base, args.baseline, args.herd)
            return
        if not args.no_build:
            build()
        only = set(args.only.split(","))
        cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
        pgver = subprocess.run([f"{BIN}/postgres", "--version"], capture_output=True, text=True).stdout.strip()
        print(f"## pgwait benchmark\n\n{cpu} cores, {pgver}, loopback, scram-sha-256, "
              f"median of {args.trials} trials per gate.")
        if "started" in only:
            scenario_started(template, base, args.trials)
        if "promoted" in only:
            scenario_promoted(template, base, args.trials)
        if "syndrop" in only:
            scenario_syndrop(args.trials)
        if "warm" in only:
            scenario_warm(template, base)
        if "footprint" in only:
            scenario_footprint(template, base)
        if "lag" in only:
            scenario_lag(template, base, args.trials)
        if "stable" in only:
            scenario_stable(template, base, args.trials)
        if "herd" in only:
            scenario_herd(template, base, args.herd, args.baseline, args.trials)
        if "refused" in only:
            scenario_refused(args.baseline, args.herd)
        if "crash" in only:
            scenario_crash(template, base, args.herd, args.baseline, args.trials)
        if "hostile" in only:
            scenario_hostile(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
