#!/usr/bin/env bash
# Installs the tools the tests and the demo need, idempotently:
# - cargo-nextest (if missing)
# - moto server (the AWS API emulator the executors are tested against) in .venv
# - the chart venv target/chart-venv (Helm as a library: scripts/chart-check.py,
#   and the process-tier journey test renders the chart with it)
# - curl (the journey test runs the journey's curl line in a runner pod)
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION="5.2.5"

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# The process tier runs every container in a private mount namespace.
if ! command -v unshare >/dev/null 2>&1 || ! command -v setpriv >/dev/null 2>&1; then
  echo "setup: installing util-linux (unshare, setpriv) for the process tier"
  apt-get update -qq && apt-get install -y -qq util-linux mount >/dev/null
fi

if ! command -v curl >/dev/null 2>&1; then
  echo "setup: installing curl for the process tier"
  apt-get update -qq && apt-get install -y -qq curl >/dev/null
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1; then
  echo "setup: installing python3 and venv"
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi

if [ ! -x .venv/bin/moto_server ] || ! .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "setup: installing moto[server]==$MOTO_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

if ! target/chart-venv/bin/python -c "import helm_python, kubernetes_validate" 2>/dev/null \
  || ! cmp -s scripts/requirements-chart.txt target/chart-venv/requirements-chart.txt; then
  echo "setup: installing scripts/requirements-chart.txt into target/chart-venv"
  python3 -m venv target/chart-venv
  target/chart-venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-chart.txt
  cp scripts/requirements-chart.txt target/chart-venv/requirements-chart.txt
fi
