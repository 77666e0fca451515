#!/bin/sh
# Starts moto's server mode on 127.0.0.1 (a free port) as a local STS for
# AssumeRoleWithWebIdentity, and prints `READY <port>` once it answers, like standin.py.
# Runs offline (checked inside `unshare -n`): moto's STS needs no network.
#
#   tests/cloud/moto_sts.sh [VENV]        # VENV defaults to /tmp/motovenv
#
# The venv is created on first use with the pinned versions in moto-requirements.txt
# (moto 5.2.5, Flask 3.1.3, Werkzeug 3.1.9 on Python 3.11); that needs PyPI once.
# Serves until killed (the script execs nothing: kill the printed PID, it is moto itself).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-/tmp/motovenv}
if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q -r "$here/moto-requirements.txt" >&2
fi
out=$(mktemp)
"$venv/bin/moto_server" -H 127.0.0.1 -p 0 >"$out" 2>&1 &
pid=$!
# Werkzeug prints " * Running on http://127.0.0.1:PORT" once the socket is bound (~1 s).
i=0
while ! grep -q 'Running on http://127.0.0.1:' "$out"; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 $pid 2>/dev/null; then
        cat "$out" >&2
        echo "moto_sts: moto_server did not start" >&2
        exit 1
    fi
    sleep 0.1
done
port=$(grep -o 'Running on http://127.0.0.1:[0-9]*' "$out" | head -n1 | sed 's/.*://')
echo "PID $pid"
echo "READY $port"
wait $pid
