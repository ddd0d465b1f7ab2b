#!/usr/bin/env bash
# The main job on its embedded default: installs the AWS emulator (moto) if
# needed, starts it on a free loopback port, and runs the demo binary
# (examples/demo, `hibernator-demo`: not part of the shipped `hibernator`
# binary) against it: a small estate (EC2, RDS, Aurora, EKS node groups) is created,
# hibernated and woken up with examples/plans/demo.yaml, and the before/after
# state is shown. Never talks to a real AWS account.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh >&2

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null && break
  sleep 0.1
done

# Emulator credentials and endpoint, for this process only.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=eu-central-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

# HIBERNATOR_DEMO_BIN: an already built demo binary (CI passes the one its
# test build made, instead of building the crate graph a second time).
if [ -n "${HIBERNATOR_DEMO_BIN:-}" ]; then
  "$HIBERNATOR_DEMO_BIN" --endpoint "http://127.0.0.1:$port" "$@"
else
  cargo run --quiet --locked -p hibernator-demo -- --endpoint "http://127.0.0.1:$port" "$@"
fi
