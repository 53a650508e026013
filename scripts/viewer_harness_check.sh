#!/usr/bin/env bash
# The 3D viewer checked in a real ComfyUI (the shared harness, CPU, offline): starts ComfyUI with this
# pack on PORT with a scratch storage, runs scripts/viewer_harness_check.js (playwright: load the
# posing_in_3d example, pose the left elbow, add the view, render, compare keypoints, both node
# renderers; then the navigation, keys, picking, props and post-run poses), stops the server and removes the scratch folder. Screenshots and report.json go to
# out/harness/viewer/. CI cannot run ComfyUI: run it by hand. The example's loader needs the pack's
# requirements (OpenCV) in the harness venv: --install-requirements pip-installs them first (what
# ComfyUI-Manager does on install), as scripts/comfy_harness_check.sh does.
#
#   scripts/viewer_harness_check.sh [-p PORT] [--install-requirements] [--only nav|people]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${COMFY_HARNESS_TOOLS:-$ROOT/../shared/tools/comfy_harness}
PORT=8188 INSTALL_REQ=0 EXTRA=()
H=${COMFY_HARNESS:-$HOME/.cache/comfy-harness}
while [ $# -gt 0 ]; do
  case "$1" in
    -p|--port) PORT="$2"; shift 2 ;;
    --install-requirements) INSTALL_REQ=1; shift ;;
    --only) EXTRA+=(--only "$2"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$INSTALL_REQ" = 1 ]; then
  "$H/venv/bin/python" -m pip install -q -r requirements.txt -c "$H/constraints.txt"
fi
SCRATCH=$(mktemp -d)
printf 'data_root: %s/data\nstorage:\n  backend: local\n  local_root: %s/storage\n  cache_root: %s/cache\n' \
  "$SCRATCH" "$SCRATCH" "$SCRATCH" > "$SCRATCH/config.yaml"
export POSE_FACTORY_CONFIG=$SCRATCH/config.yaml
export POSE_FACTORY_POINTER_DIR=$SCRATCH/pointers  # ComfyUI's record of its root stays with the scratch root
trap '"$T/run_server.sh" --stop -p "$PORT"; rm -rf "$SCRATCH"' EXIT
mkdir -p "$SCRATCH/input" "$SCRATCH/output" "$SCRATCH/user"
# the user folder too: the checks set the front end's settings (the Vue renderer on and off), which
# must not reach another ComfyUI sharing the harness tree
"$T/run_server.sh" -p "$PORT" --only --keep-links --strict "$ROOT" -- --input-directory "$SCRATCH/input" \
  --output-directory "$SCRATCH/output" --user-directory "$SCRATCH/user"
node scripts/viewer_harness_check.js --url "http://127.0.0.1:$PORT" --storage "$SCRATCH/storage" --input "$SCRATCH/input" --out out/harness/viewer "${EXTRA[@]}"
