#!/usr/bin/env bash
# The ComfyUI-side test venv (DESIGN.md §2): .venv-comfy with what a user's ComfyUI has — the pack's
# unpinned requirements.txt (numpy 2.x, the newest opencv-python, pillow, requests, boto3, pyyaml),
# torch 2.13.0 (CPU: pip's find-links carries the CPU wheel, as for .venv), aiohttp and psutil (ComfyUI's
# own requirements, which the server routes and their tests use), pytest and moto's server, and the
# drawing oracle (scripts/fetch_oracles.sh, which adds matplotlib for it).
# No bpy, MediaPipe or runpod: tests that need them are marked `blender` / `mediapipe` or skip.
# Run the ComfyUI-side tests with `make test-comfy-side`.
# Idempotent: re-installs only when requirements.txt or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python311.sh
VENV=.venv-comfy
if [ ! -x $VENV/bin/python ]; then
  "$PY311" -m venv $VENV
fi
stamp=$VENV/.installed
want=$(cat requirements.txt scripts/setup_comfy_side.sh | sha256sum | cut -c1-16)
if [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  $VENV/bin/python -m pip install -q --upgrade pip
  # --upgrade: the newest numpy / opencv-python the index has, as a fresh ComfyUI install gets them.
  $VENV/bin/python -m pip install -q --upgrade -r requirements.txt torch==2.13.0 aiohttp psutil pytest "moto[server]"
  $VENV/bin/python - <<'EOF'
import numpy, cv2
assert int(numpy.__version__.split(".")[0]) >= 2, f"expected numpy 2.x, got {numpy.__version__}"
print(f"setup_comfy_side: numpy {numpy.__version__}, opencv {cv2.__version__}")
EOF
  echo "$want" > $stamp
fi
if [ -x scripts/fetch_oracles.sh ]; then
  PYTHON=$VENV/bin/python scripts/fetch_oracles.sh
fi
