#!/usr/bin/env bash
# Runs tpm-autonomic once on sample federation data, from nothing.
#
# Usage: scripts/sample-run.sh [--clean]
#
#   --clean  load sample/clean.sql (a healthy federation) instead of
#            sample/data.sql (one that trips all four basin signals)
#
# Installs the wasm32-wasip2 target when it is missing, builds the daemon
# and the detectors, starts a throwaway PostgreSQL 15 on 127.0.0.1 with a
# random port and password, loads sample/schema.sql and the data, runs
# `tpm-autonomic --once --verbose --dry-run` (the alert and the thermal
# record are printed, nothing is sent), and stops and removes the database.
# Exits with the daemon's exit status.
set -euo pipefail

data_file=data.sql
for argument in "$@"; do
    case "$argument" in
        --clean) data_file=clean.sql ;;
        -h | --help)
            sed -n '2,15s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *)
            echo "usage: $0 [--clean]" >&2
            exit 2
            ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

pg_bin=${TPM_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$pg_bin/initdb" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "PostgreSQL 15 is missing; installing the postgresql-15 package"
        apt-get install -y --no-install-recommends postgresql-15 >/dev/null
    else
        echo "sample-run: $pg_bin/initdb not found. Install PostgreSQL 15 (Debian: apt-get" \
            "install postgresql-15) or set TPM_PG_BIN to the folder with initdb." >&2
        exit 1
    fi
fi

echo "==> Building the detectors"
scripts/build-plugins.sh
echo "==> Building the daemon (release; about 5 minutes the first time)"
cargo build --release -p tpm-autonomic
daemon=${CARGO_TARGET_DIR:-$repo/target}/release/tpm-autonomic

# initdb refuses to run as root, so as root the server runs as the postgres
# user, which needs to reach the folder.
as_server_user=()
folder=$(mktemp -d /tmp/tpm-autonomic-sample.XXXXXX)
chmod 755 "$folder"
if [ "$(id -u)" = 0 ]; then
    chown postgres "$folder"
    as_server_user=(runuser -u postgres --)
fi

port=""
cleanup() {
    if [ -n "$port" ]; then
        "${as_server_user[@]}" "$pg_bin/pg_ctl" -D "$folder/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$folder"
}
trap cleanup EXIT

password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$folder/password"
chmod 644 "$folder/password"

echo "==> Starting a throwaway PostgreSQL in $folder"
"${as_server_user[@]}" "$pg_bin/initdb" -D "$folder/data" -U tpm --pwfile="$folder/password" \
    --auth-local=trust --auth-host=scram-sha-256 >"$folder/initdb.log" 2>&1 ||
    { cat "$folder/initdb.log" >&2; exit 1; }

# Try free-looking ports until the server starts on one.
started=false
for attempt in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    if "${as_server_user[@]}" "$pg_bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$folder" \
        start >/dev/null 2>&1; then
        started=true
        break
    fi
done
if [ "$started" != true ]; then
    port=""
    echo "sample-run: PostgreSQL did not start; its log:" >&2
    tail -20 "$folder/server.log" >&2
    exit 1
fi

export PGPASSWORD=$password
psql=("$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U tpm)
"${psql[@]}" -d postgres -c "CREATE DATABASE federation"
"${psql[@]}" -d federation -f sample/schema.sql -f "sample/$data_file"
echo "==> Loaded sample/schema.sql and sample/$data_file into federation on 127.0.0.1:$port"

echo "==> tpm-autonomic --once --verbose --dry-run"
status=0
# The compiled-plugin cache goes into the throwaway folder too, so the run
# leaves nothing behind.
TPM_DATABASE_URL="postgresql://tpm@127.0.0.1:$port/federation" \
    TPM_CACHE_DIR="$folder/cache" \
    "$daemon" --once --verbose --dry-run --plugins-dir plugins \
    --log-file "$folder/logs/tpm_autonomic.log" || status=$?
echo "==> tpm-autonomic exited with status $status"
exit "$status"
