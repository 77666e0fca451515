#!/bin/sh
# Runs the compose demo end to end on this machine, without pulling anything:
#   docker/demo.sh up     build static binaries and images, start db + app, wait for the app
#   docker/demo.sh down   remove the demo's containers, network and images
# POSTGRES_IMAGE: use this PostgreSQL image instead of one built from the host's installation.
# COMPOSE_PROJECT_NAME, PGWAIT_IMAGE: names (the tests set unique ones).
set -eu
cd "$(dirname "$0")/.."
project=${COMPOSE_PROJECT_NAME:-pgwait-demo}
export PGWAIT_IMAGE=${PGWAIT_IMAGE:-$project-pgwait:latest}
work=${DEMO_WORKDIR:-${TMPDIR:-/tmp}/$project}
if docker compose version >/dev/null 2>&1; then compose="docker compose"; else compose=docker-compose; fi
dc() { $compose -p "$project" -f docker/compose.yaml "$@"; }

case ${1:-up} in
up)
  static='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"'
  RUSTFLAGS=$static cargo build --release --target x86_64-unknown-linux-gnu --bin pgwait --example demo_app
  docker build -q --target prebuilt -t "$PGWAIT_IMAGE" . >/dev/null
  if [ -z "${POSTGRES_IMAGE:-}" ]; then
    export POSTGRES_IMAGE=$project-postgres:latest
    docker/postgres/build-context.sh "$work/postgres" >/dev/null
    docker build -q -t "$POSTGRES_IMAGE" "$work/postgres" >/dev/null
  fi
  export APP_CONTEXT="$work/app"
  mkdir -p "$APP_CONTEXT"
  cp docker/app/Dockerfile "$APP_CONTEXT/"
  cp target/x86_64-unknown-linux-gnu/release/examples/demo_app "$APP_CONTEXT/demo_app"
  dc build -q
  dc up -d
  app=$(dc ps -q app)
  code=$(docker wait "$app")
  dc logs --no-color
  echo "app exited with $code"
  exit "$code"
  ;;
down)
  export POSTGRES_IMAGE=${POSTGRES_IMAGE:-$project-postgres:latest} APP_CONTEXT="$work/app"
  mkdir -p "$APP_CONTEXT"
  dc down -v --rmi local --remove-orphans >/dev/null 2>&1 || true
  docker rmi -f "$PGWAIT_IMAGE" "$project-postgres:latest" >/dev/null 2>&1 || true
  rm -rf "$work"
  ;;
*)
  echo "usage: $0 up|down" >&2
  exit 2
  ;;
esac
