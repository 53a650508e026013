#!/usr/bin/env bash
# The worker environment alone (DESIGN.md §2), for a ComfyUI user: a CPython 3.11 venv at
# .venv-worker with pod_worker/requirements.txt (bpy 5.0.1, numpy 1.26, MediaPipe, runpod, ...).
# The local backend finds it by itself; or set worker_python in config/local.yaml.
# Idempotent: re-installs only when the requirements changed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python311.sh
[ -x .venv-worker/bin/python ] || "$PY311" -m venv .venv-worker
stamp=.venv-worker/.installed
want=$(sha256sum pod_worker/requirements.txt | cut -c1-16)
if [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  .venv-worker/bin/python -m pip install -q --upgrade pip
  .venv-worker/bin/python -m pip install -q -r pod_worker/requirements.txt
  echo "$want" > $stamp
fi
.venv-worker/bin/python -c "import bpy; print('worker ready: bpy', bpy.app.version_string)"
