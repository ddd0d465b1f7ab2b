#!/usr/bin/env bash
# The whole test suite. Works on a fresh machine with the Rust toolchain and
# Python 3: installs what it needs (cargo-nextest; moto server into .venv),
# then runs every test (unit, property, integration against moto, doc tests,
# docs examples).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

profile=default
[ "${CI:-}" = "true" ] && profile=ci

export HIBERNATOR_MOTO_SERVER="${HIBERNATOR_MOTO_SERVER:-$PWD/.venv/bin/moto_server}"
cargo nextest run --workspace --all-features --locked --profile "$profile"
cargo test --doc --workspace --all-features --locked
