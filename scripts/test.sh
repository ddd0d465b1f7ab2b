#!/usr/bin/env bash
# The whole test suite. Works on a fresh machine with the Rust toolchain:
# installs the cargo tools it needs, then runs every test (unit, property,
# integration, doc tests, docs examples).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

profile=default
[ "${CI:-}" = "true" ] && profile=ci

cargo nextest run --workspace --all-features --locked --profile "$profile"
cargo test --doc --workspace --all-features --locked
