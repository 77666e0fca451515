#!/usr/bin/env bash
# pgwait's main job in one command, on a machine with nothing set up: build pgwait, make a
# throwaway PostgreSQL cluster, start pgwait gating a command on it, and start the server a
# second later. You see pgwait wait (refused, then "starting up"), authenticate with SCRAM,
# run SELECT 1, and exec the command. Everything is removed afterwards.
#
#   examples/try.sh            # installs the PostgreSQL server package first if it is missing (root)
set -euo pipefail
cd "$(dirname "$0")/.."

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "try.sh: PostgreSQL server binaries not found; install them (apt-get install postgresql)" >&2
    exit 1
  fi
  echo "try.sh: installing the PostgreSQL server package (apt-get install postgresql)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

# PGWAIT names a binary already built (the test suite runs this script with its own).
pgwait=${PGWAIT:-}
if [ -z "$pgwait" ]; then
  echo "try.sh: building pgwait (cargo build --release)..."
  cargo build --release --quiet
  pgwait=$PWD/target/release/pgwait
fi

# PostgreSQL refuses to run as root: as root, the server runs as the 'postgres' user.
as_server=()
if [ "$(id -u)" -eq 0 ]; then as_server=(setpriv --reuid=postgres --regid=postgres --init-groups); fi

dir=$(mktemp -d /tmp/pgwait-try.XXXXXX)
chmod 0777 "$dir"
server=""
cleanup() {
  if [ -n "$server" ]; then kill -INT "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "demo-password" >"$dir/pw"
chmod 0644 "$dir/pw"
"${as_server[@]}" "$bindir/initdb" -D "$dir/data" -U app --auth=scram-sha-256 --pwfile="$dir/pw" \
  -E UTF8 --locale=C -N >/dev/null

# The server starts a second from now; pgwait is already waiting for it.
(
  sleep 1
  exec "${as_server[@]}" "$bindir/postgres" -D "$dir/data" -p "$port" -k "$dir" \
    -c listen_addresses=127.0.0.1 >"$dir/server.log" 2>&1
) &
server=$!

echo "try.sh: PostgreSQL starts on 127.0.0.1:$port in 1 s; pgwait gates a command on it:"
echo "+ PGPASSWORD=... pgwait -h 127.0.0.1 -p $port -U app -d postgres -- echo 'the app starts now'"
PGPASSWORD=demo-password "$pgwait" -h 127.0.0.1 -p "$port" -U app -d postgres -t 30s \
  -- echo "the app starts now: PostgreSQL accepted its credentials and a query"
