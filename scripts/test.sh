#!/usr/bin/env bash
# Runs the whole test suite (unit + integration, real ffmpeg/espeak-ng/SQLite/PostgreSQL/browser), plus fmt and
# clippy. With DEVATAR_TEST_DATABASE_URL set (as .ci/run does), the tests whose behaviour depends on the database
# backend run a second time on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
cargo fmt --all -- --check
# Clippy lints while the tests build: clippy-driver wraps rustc for this crate's own targets (lib, binary, unit
# and integration tests, examples: what `cargo clippy --all-targets -- -D warnings` checks), so the dependencies
# are compiled once, for the tests, instead of a second time for a separate check pass.
CLIPPY_DRIVER="$(rustc --print sysroot)/bin/clippy-driver"
if [ ! -x "$CLIPPY_DRIVER" ]; then
  echo "clippy is missing: rustup component add clippy" >&2
  exit 1
fi
export RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# The tests run under cargo-nextest (every test in its own process, the slowest first: .config/nextest.toml);
# the machine's toolchain has it, else it is installed once.
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
# One test more than cores: most tests wait part of their time (the sandbox's latencies, leases, browser pages),
# and with one per core the cores were idle for about a sixth of the run.
cargo nextest run --locked --test-threads "$(($(nproc) + 1))"
# Doc tests (nextest does not run them).
cargo test --locked --doc
if [ -n "${DEVATAR_TEST_DATABASE_URL:-}" ]; then
  echo "== backend-dependent tests on PostgreSQL ==" >&2
  # Drop the per-test databases a previous run left behind.
  psql "$DEVATAR_TEST_DATABASE_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'dt\_%'" |
    while read -r db; do psql "$DEVATAR_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null; done
  # Storage, the run queue and leases, provider slots, LISTEN/NOTIFY, run ownership and resume, cloud renders by
  # workers (the job ledger), the API's routes and the pages' queries, and one render: the modules below. The rest
  # of the suite exercises no query these do not.
  # The page-behaviour walks (stale state, new-user fixes, the digital-twin page) run on SQLite only: what they add
  # over the other ui_browser tests is page logic, and the queries behind them run on PostgreSQL through api::.
  # The schemathesis walk (api::schema) checks the API's contract — request validation, response shapes — which
  # no backend changes; the routes' PostgreSQL queries are the other api:: tests' job. It runs on SQLite only.
  DEVATAR_TEST_BACKEND=postgres cargo nextest run --locked --test it -E \
    'test(/^(postgres_backend|workers|api|cli_resume|ui_browser)::/) - test(/^ui_browser::(stale|newuser|twin)::/) - test(/^api::schema::/)'
fi
