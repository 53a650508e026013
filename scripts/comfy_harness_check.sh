#!/usr/bin/env bash
# Verification in a real ComfyUI (DESIGN.md §6), with the shared harness in ../shared/tools/comfy_harness
# (CPU, offline, loopback; nothing it builds is committed). Runs:
#   1. set-up:  the harness from a ComfyUI git dir (fetched snapshot of github.com/yzkee/ComfyUI;
#               tested at 783545f689a0af730065994b46b382ae24844c99, ComfyUI 0.33.0, frontend 1.49.6)
#   2. start:   ComfyUI with this pack (--only: no other custom nodes), --strict: exit 3 on an import failure
#   3. check:   the pack's routes answer (/pose_factory/projects, /jobs) and its JS is listed in /extensions
#   4. capture: scripts/capture_object_info.py -> tests/fixtures/object_info.json (+ .meta.json)
#   5. UI:      optional (--ui): ui_shot.js adds our nodes to the canvas, screenshot + console report
#   6. stop:    the server, always (trap)
#
#   scripts/comfy_harness_check.sh [--comfyui-git DIR] [--no-setup] [--no-capture] [--ui] [--min-nodes N]
#                                  [--install-requirements] [--keep-config] [-p PORT]
#
# --install-requirements pip-installs requirements.txt into the harness venv first (what ComfyUI-Manager
# does on install); by default it is not, which checks that the pack imports without its optional
# dependencies (DESIGN.md §2: importing must never fail). Screenshots go to out/harness/.
# The server runs with a clean config (POSE_FACTORY_CONFIG -> a temporary data root, storage and cache) so
# the captured dropdowns (batch_id lists the local index) do not depend on this machine's batches;
# --keep-config uses the pack's own config/local.yaml instead.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${COMFY_HARNESS_TOOLS:-$ROOT/../shared/tools/comfy_harness}
H=${COMFY_HARNESS:-$HOME/.cache/comfy-harness}
GIT_DIR_COMFY=${COMFYUI_GIT:-/work/.mirror/yzkee+ComfyUI/repo}
PORT=8188
SETUP=1 CAPTURE=1 UI=0 MIN_NODES=0 INSTALL_REQ=0 KEEP_CONFIG=0
while [ $# -gt 0 ]; do
  case "$1" in
    --comfyui-git) GIT_DIR_COMFY="$2"; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    --no-capture) CAPTURE=0; shift ;;
    --ui) UI=1; shift ;;
    --min-nodes) MIN_NODES="$2"; shift 2 ;;
    --install-requirements) INSTALL_REQ=1; shift ;;
    --keep-config) KEEP_CONFIG=1; shift ;;
    -p|--port) PORT="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
URL=http://127.0.0.1:$PORT

if [ "$SETUP" = 1 ]; then
  [ -d "$GIT_DIR_COMFY" ] || { echo "no ComfyUI git dir at $GIT_DIR_COMFY (fetch github:yzkee/ComfyUI, or --comfyui-git)" >&2; exit 2; }
  "$T/setup.sh" "$GIT_DIR_COMFY"
fi
if [ "$INSTALL_REQ" = 1 ]; then
  "$H/venv/bin/python" -m pip install -q -r requirements.txt -c "$H/constraints.txt"
fi
COMMIT=$(git -C "$GIT_DIR_COMFY" rev-parse HEAD 2>/dev/null || echo "")

SCRATCH=$(mktemp -d)
if [ "$KEEP_CONFIG" = 0 ]; then
  # data_root too: the ledger and logs stay in the scratch folder, and a checkout's data/ is never
  # moved out of it (only ComfyUI's default data root takes an in-pack data/: pose_factory/settings.py)
  printf 'data_root: %s/data\nstorage:\n  backend: local\n  local_root: %s/storage\n  cache_root: %s/cache\n' \
    "$SCRATCH" "$SCRATCH" "$SCRATCH" > "$SCRATCH/config.yaml"
  export POSE_FACTORY_CONFIG=$SCRATCH/config.yaml
  export POSE_FACTORY_POINTER_DIR=$SCRATCH/pointers  # ComfyUI's record of its root stays with the scratch root
fi
trap '"$T/run_server.sh" --stop -p "$PORT"; rm -rf "$SCRATCH"' EXIT
"$T/run_server.sh" -p "$PORT" --only --keep-links --strict "$ROOT"  # --keep-links: other checkouts may be running

echo "--- routes"
curl -sf "$URL/pose_factory/projects"; echo
curl -sf "$URL/pose_factory/jobs"; echo
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/pose_factory/projects/Not%20Valid/batches")
[ "$code" = 400 ] || { echo "expected 400 for a bad project name, got $code" >&2; exit 1; }
echo "--- extensions"
curl -sf "$URL/extensions" | tr ',' '\n' | grep pose_factory || { echo "web/js/pose_factory.js not served" >&2; exit 1; }
echo "--- our nodes"
curl -sf "$URL/object_info" | python3 -c 'import json,sys; d=json.load(sys.stdin); o=sorted(k for k in d if k.startswith("PoseFactory")); print(len(o), "PoseFactory nodes:", ", ".join(o))'

if [ "$CAPTURE" = 1 ]; then
  python3 scripts/capture_object_info.py "$URL" --comfyui-commit "$COMMIT" --min-ours "$MIN_NODES"
fi

if [ "$UI" = 1 ]; then
  mkdir -p out/harness
  nodes=$(curl -sf "$URL/object_info" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join(k for k in ["PoseFactoryRequestPoseBatch","PoseFactoryLoadPoseFromR2","PoseFactoryDepthNormalLoader"] if k in d))')
  add=()
  [ -n "$nodes" ] && add=(--add-node "$nodes")
  node "$T/ui_shot.js" --url "$URL" --clear "${add[@]}" --eval 'window.__poseFactoryLoaded === true' \
       --out out/harness/nodes.png --report out/harness/ui.json
  echo "screenshot: out/harness/nodes.png  report: out/harness/ui.json"
fi
