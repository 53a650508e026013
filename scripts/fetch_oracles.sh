#!/usr/bin/env bash
# Fetches the test oracles from PyPI (DESIGN.md §6). Idempotent: does nothing when they are there.
#
# OpenPose drawing: controlnet-aux's own open_pose/util.py, extracted alone from the pinned wheel
# (its package imports torch and downloads models; the test loads this one file). Its
# draw_handpose does `import matplotlib` for hsv_to_rgb, so matplotlib must be importable too.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
VERSION=0.0.10
UTIL_SHA256=a752bec7cba70a4fa85836585ef1291d2480c187074ae8864fda26992df5a92d
dir=.cache/oracles
out=$dir/controlnet_aux_open_pose_util.py

if [ "$(sha256sum "$out" 2>/dev/null | cut -c1-64)" != "$UTIL_SHA256" ]; then
  mkdir -p "$dir"
  wheel=$dir/controlnet_aux-$VERSION-py3-none-any.whl
  [ -f "$wheel" ] || "$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
    "controlnet-aux==$VERSION" -d "$dir"
  "$PYTHON" - "$wheel" "$out.tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    data = z.read("controlnet_aux/open_pose/util.py")
open(sys.argv[2], "wb").write(data)
PY
  got=$(sha256sum "$out.tmp" | cut -c1-64)
  if [ "$got" != "$UTIL_SHA256" ]; then
    rm -f "$out.tmp"
    echo "fetch_oracles: controlnet-aux $VERSION util.py has sha256 $got, expected $UTIL_SHA256" >&2
    exit 1
  fi
  mv "$out.tmp" "$out"
  echo "fetch_oracles: $out (controlnet-aux $VERSION)"
fi

if ! "$PYTHON" -c "import matplotlib.colors" 2>/dev/null; then
  "$PYTHON" -m pip install -q matplotlib
fi
