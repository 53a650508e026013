#!/usr/bin/env bash
# One-time set-up: a CPython 3.11 venv at .venv with the test set (worker + ComfyUI side), and
# the drawing oracle for the tests. Idempotent: re-runs only when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python311.sh
if [ ! -x .venv/bin/python ]; then
  "$PY311" -m venv .venv
fi
stamp=.venv/.installed
want=$(cat requirements-dev.txt pod_worker/requirements.txt | sha256sum | cut -c1-16)
if [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  echo "$want" > $stamp
fi
if [ -x scripts/fetch_oracles.sh ]; then
  PYTHON=.venv/bin/python scripts/fetch_oracles.sh
fi
