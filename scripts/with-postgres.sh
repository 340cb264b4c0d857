#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: initdb in a temp dir, a loopback port,
# PLUGHOST_TEST_PG_URL exported for the command, the server stopped and its files removed at exit.
#   scripts/with-postgres.sh npm test
# Needs Debian's postgresql package (or any PostgreSQL 13+ whose bin dir is in PG_BIN).
# As root, the server runs as the postgres user (PostgreSQL refuses to run as root).
set -euo pipefail
if [ $# -eq 0 ]; then echo "usage: $0 <command> [args...]" >&2; exit 2; fi

bin="${PG_BIN:-}"
if [ -z "$bin" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "$0: no PostgreSQL found: install it (apt-get install postgresql) or set PG_BIN" >&2
  exit 2
fi

dir=$(mktemp -d /tmp/plughost-pg.XXXXXX)
as_owner=()
if [ "$(id -u)" = "0" ]; then
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi
# A free loopback port, chosen by the kernel.
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")

stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null

export PLUGHOST_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port for this run" >&2
set +e
"$@"
status=$?
set -e
exit $status
