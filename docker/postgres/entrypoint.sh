#!/bin/sh
# Initialises the cluster on first start (like the official image: POSTGRES_PASSWORD, scram),
# then runs the server in the foreground. The image has no tools besides sh and PostgreSQL.
set -eu
PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}" |
    initdb -D "$PGDATA" -U postgres --pwfile=/dev/stdin -E UTF8 --locale=C \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null 2>&1
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c jit=off -k /var/lib/postgresql "$@"
