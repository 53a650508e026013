#!/usr/bin/env bash
# One-time set-up: a CPython 3.11 venv at .venv with the test set (worker + ComfyUI side), and
# the drawing oracle for the tests. Idempotent: re-runs only when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY311=${PY311:-$(command -v python3.11 || true)}
if [ -z "$PY311" ]; then
  echo "setup: needs CPython 3.11 (bpy 5.0.1 requires exactly 3.11); install it (e.g. 'uv python install 3.11') and set PY311=/path/to/python3.11" >&2
  exit 1
fi
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
