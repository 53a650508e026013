#!/usr/bin/env bash
# Starts ComfyUI (the shared harness) with this pack on PORT, runs bench/bench_viewer.js, stops it.
#   bench/bench_viewer.sh [-p PORT] [--frames N]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${COMFY_HARNESS_TOOLS:-$ROOT/../shared/tools/comfy_harness}
PORT=8188 FRAMES=60
while [ $# -gt 0 ]; do
  case "$1" in
    -p|--port) PORT="$2"; shift 2 ;;
    --frames) FRAMES="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
SCRATCH=$(mktemp -d)
printf 'data_root: %s/data\nstorage:\n  backend: local\n  local_root: %s/storage\n  cache_root: %s/cache\n' \
  "$SCRATCH" "$SCRATCH" "$SCRATCH" > "$SCRATCH/config.yaml"
export POSE_FACTORY_CONFIG=$SCRATCH/config.yaml
trap '"$T/run_server.sh" --stop -p "$PORT" >/dev/null; rm -rf "$SCRATCH"' EXIT
"$T/run_server.sh" -p "$PORT" --only --keep-links --strict "$ROOT" >/dev/null
node bench/bench_viewer.js --url "http://127.0.0.1:$PORT" --frames "$FRAMES"
