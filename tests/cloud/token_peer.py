"""A recording PostgreSQL peer that takes a password only over TLS, as RDS does for IAM logins.

    python3 tests/cloud/token_peer.py DIR

Makes a private CA and server certificate in DIR/certs (tests/differential/peer.py's
make_certs), listens on 127.0.0.1 (a free port), asks each client for a cleartext password
(AuthenticationCleartextPassword: the request RDS makes for an IAM user, so the token itself is
on the wire), records it, lets the client in and answers its SELECT 1. Prints `READY <port>` once
listening; after each connection rewrites DIR/records.json (the list of connection records:
`password`, `tls`, `params`, ...). Serves until killed.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "differential"))
import peer  # noqa: E402


def main():
    out = sys.argv[1]
    certs = peer.make_certs(out, hosts={"localhost": ["127.0.0.1"]})
    server = peer.Peer({"127.0.0.1:0": {"tls": True, "auth": "password"}}, certs, hosts={})
    server.start()
    port = server.listeners[0].socks[0][0].getsockname()[1]
    print("READY %d" % port, flush=True)
    written = None
    while True:
        time.sleep(0.02)
        with server.lock:
            text = json.dumps(server.records)
        if text != written:
            tmp = os.path.join(out, "records.json.tmp")
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, os.path.join(out, "records.json"))
            written = text


if __name__ == "__main__":
    main()
