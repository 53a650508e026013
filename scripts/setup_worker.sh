#!/usr/bin/env bash
# The worker environment alone (DESIGN.md §2), for a ComfyUI user: a CPython 3.11 venv at
# .venv-worker with pod_worker/requirements.txt (bpy 5.0.1, numpy 1.26, MediaPipe, runpod, ...).
# The local backend finds it by itself; or set worker_python in config/local.yaml.
# Idempotent: re-installs only when the requirements changed. It says what it installs and pip
# shows every download with its size and progress (about 1.5 GB on disk, bpy alone 0.8 GB: a few
# minutes on a fast line). On Windows, the README gives the same steps by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python311.sh
VENV=.venv-worker
REQ=pod_worker/requirements.txt
started=$(date +%s)
step() { printf '\n==> [%s] %s\n' "$1" "$2"; }

step 1/3 "worker venv $VENV with $("$PY311" -c 'import sys; print("Python", sys.version.split()[0], "at", sys.executable)')"
if [ -x $VENV/bin/python ]; then
  echo "exists"
else
  "$PY311" -m venv $VENV
  echo "made"
fi

stamp=$VENV/.installed
want=$(sha256sum $REQ | cut -c1-16)
if [ "$(cat $stamp 2>/dev/null)" = "$want" ]; then
  step 2/3 "packages: already installed from $REQ (unchanged since; delete $stamp to reinstall)"
else
  step 2/3 "packages from $REQ (about 1.5 GB on disk; bpy is the largest download, ~0.8 GB installed):"
  grep -vE '^\s*(#|$)' $REQ | sed 's/^/      /'
  $VENV/bin/python -m pip install --upgrade --progress-bar on pip
  $VENV/bin/python -m pip install --progress-bar on -r $REQ
  echo "$want" > $stamp
fi

step 3/3 "check: bpy imports in the worker venv"
$VENV/bin/python -c "import bpy; print('worker ready: bpy', bpy.app.version_string)"
echo "done in $(( $(date +%s) - started )) s; the local backend uses $VENV/bin/python (or set worker_python in config/local.yaml)"
