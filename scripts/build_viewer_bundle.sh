#!/usr/bin/env bash
# Bundles the three.js parts the 3D viewer uses (scripts/viewer_bundle/entry.js; versions pinned in
# its package.json) into web/js/vendor/three.module.min.js with three.js's licence beside it.
# npm installs into a build folder outside the repository (default /tmp/pose-factory-viewer-build);
# nothing is fetched at run time: ComfyUI serves the committed bundle.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-/tmp/pose-factory-viewer-build}"
mkdir -p "$build"
cp "$here/viewer_bundle/package.json" "$here/viewer_bundle/entry.js" "$build/"
(cd "$build" && npm install --no-audit --no-fund --silent)
version="$(node -p "require('$build/node_modules/three/package.json').version")"
out="$repo/web/js/vendor"
mkdir -p "$out"
"$build/node_modules/.bin/esbuild" "$build/entry.js" --bundle --format=esm --minify --legal-comments=none \
  --banner:js="/* three.js ${version} (https://threejs.org), MIT licence: three.LICENSE; parts bundled by scripts/build_viewer_bundle.sh */" \
  --outfile="$out/three.module.min.js"
cp "$build/node_modules/three/LICENSE" "$out/three.LICENSE"
ls -l "$out"
