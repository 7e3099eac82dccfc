#!/usr/bin/env bash
# Runs every test of the project on this machine.
#
# Usage: scripts/test.sh [extra arguments for cargo test]
#
# Installs the wasm32-wasip2 target when it is missing, builds the detectors
# and the test fixtures, then runs the unit tests of every crate, the
# integration tests, and a short smoke run of the benchmarks. The integration tests start their own PostgreSQL
# clusters (PostgreSQL 15 binaries from /usr/lib/postgresql/15/bin, or the
# folder in TPM_TEST_PG_BIN) and a fake Telegram server, all on 127.0.0.1.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

pg_bin=${TPM_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$pg_bin/initdb" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "PostgreSQL 15 is missing; installing the postgresql-15 package"
        apt-get install -y --no-install-recommends postgresql-15 >/dev/null
    else
        echo "test: $pg_bin/initdb not found. Install PostgreSQL 15 (Debian: apt-get install" \
            "postgresql-15) or set TPM_TEST_PG_BIN to the folder with initdb and pg_ctl." >&2
        exit 1
    fi
fi

scripts/build-plugins.sh --fixtures

# The host's unit and integration tests, then the SDK's and the detectors'
# own unit tests, which run natively.
cargo test --workspace "$@"

# The benchmarks at a tiny size, in the test build, so that they keep
# compiling and running; docs/benchmarks.md has the full runs.
cargo bench --profile dev --bench daemon -- smoke
cargo bench --profile dev --bench sandbox -- --quick
