#!/usr/bin/env python3
"""Captures /object_info from a running ComfyUI with the pack loaded, as a test fixture (DESIGN.md §6).

    python scripts/capture_object_info.py [URL] [--out tests/fixtures/object_info.json]

Keeps our nodes (ids starting with "PoseFactory") and the core node classes our example workflows
use — CORE_NODES below plus every class named in example_workflows/**/*.json that the server
knows — and writes them sorted. Beside it, ``object_info.meta.json`` records what it was captured
from (ComfyUI and frontend versions from /system_stats, the ComfyUI commit when given, the counts).

Our nodes' ``python_module`` is ComfyUI's "custom_nodes.<pack folder name>", which depends on the
checkout's folder name (the harness links /work/main as "main"); it is written as
"custom_nodes.<pyproject [project].name>" so the fixture does not change with the checkout's path.
Standard library only (runs with any Python 3.8+).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "PoseFactory"
# What the example workflows use, and what a user needs to lay out / tile several views.
CORE_NODES = (
    "CheckpointLoaderSimple", "ControlNetLoader", "ControlNetApplyAdvanced", "ControlNetApply",
    "CLIPTextEncode", "KSampler", "EmptyLatentImage", "VAEDecode", "VAEEncode", "SaveImage", "PreviewImage",
    "LoadImage", "ImageScale", "ImageScaleBy", "ImageBatch", "ImageStitch", "ImageGrid", "ImageFromBatch",
    "RebatchImages", "ImageCrop", "ImageCompositeMasked", "MaskToImage", "ImageToMask",
    # meshes: core's 3D preview and its image-to-3D (Hunyuan3D 2) chain, which Render Mesh Passes follows
    "Preview3D", "ImageOnlyCheckpointLoader", "CLIPVisionEncode", "Hunyuan3Dv2Conditioning",
    "EmptyLatentHunyuan3Dv2", "VAEDecodeHunyuan3D", "VoxelToMeshBasic", "SaveGLB",
    # the motion examples: a Wan VACE video graph and an animated preview
    "UNETLoader", "CLIPLoader", "VAELoader", "WanVaceToVideo", "TrimVideoLatent", "ImageBlend",
    "SaveAnimatedWEBP",
    # the custom-rig example shows the rig report
    "PreviewAny",
)


def get_json(url: str, timeout: float = 60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}  # drawn by the UI, never in /object_info


def workflow_classes(folder: Path) -> set:
    """Node classes named in UI-format ("nodes": [{"type"}]) and API-format ({id: {"class_type"}})
    workflows under folder, the front end's own nodes left out."""
    found = set()
    for path in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"capture: skipping unreadable {path}", file=sys.stderr)
            continue
        if isinstance(data, dict) and isinstance(data.get("nodes"), list):
            found |= {n["type"] for n in data["nodes"] if isinstance(n, dict) and isinstance(n.get("type"), str)
                      and n["type"] not in FRONTEND_ONLY}
        elif isinstance(data, dict):
            found |= {n["class_type"] for n in data.values() if isinstance(n, dict) and "class_type" in n}
    return found


def pack_name() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(r'^\[project\][^\[]*?^name\s*=\s*"([^"]+)"', text, re.M | re.S)
    return m.group(1) if m else ROOT.name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", nargs="?", default="http://127.0.0.1:8188")
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "object_info.json"))
    ap.add_argument("--comfyui-commit", default="", help="the ComfyUI commit the server runs (recorded in the meta file)")
    ap.add_argument("--min-ours", type=int, default=0, help="fail unless at least this many PoseFactory nodes are served")
    args = ap.parse_args(argv)
    url = args.url.rstrip("/")
    try:
        info = get_json(url + "/object_info")
        stats = get_json(url + "/system_stats")
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"capture: cannot read {url}/object_info: {e}", file=sys.stderr)
        return 2

    ours = sorted(k for k in info if k.startswith(PREFIX))
    used = workflow_classes(ROOT / "example_workflows")
    wanted_core = (set(CORE_NODES) | used) - set(ours)
    missing = sorted(c for c in wanted_core if c not in info and not c.startswith(PREFIX))
    core = sorted(c for c in wanted_core if c in info)
    unknown_ours = sorted(c for c in used if c.startswith(PREFIX) and c not in info)

    name = pack_name()
    keep = {}
    for k in ours + core:
        entry = json.loads(json.dumps(info[k]))
        mod = entry.get("python_module", "")
        if k in ours and mod.startswith("custom_nodes."):
            entry["python_module"] = "custom_nodes." + name
        keep[k] = entry

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(keep, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    system = stats.get("system", {})
    meta = {
        "captured_from": url,
        "comfyui_version": system.get("comfyui_version"),
        "comfyui_commit": args.comfyui_commit or None,
        "frontend_version": next((p.get("installed") for p in system.get("comfy_package_versions", [])
                                  if p.get("name") == "comfyui-frontend-package"), None),
        "python_version": system.get("python_version"),
        "pytorch_version": system.get("pytorch_version"),
        "server_node_count": len(info),
        "pose_factory_nodes": ours,
        "core_nodes": core,
        "core_nodes_missing": missing,
        "workflow_nodes_not_served": unknown_ours,
    }
    meta_path = out.with_name(out.stem + ".meta.json")
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"capture: {len(ours)} PoseFactory nodes, {len(core)} core nodes -> {out} (ComfyUI "
          f"{meta['comfyui_version']}, frontend {meta['frontend_version']})")
    if missing:
        print(f"capture: core nodes not served by this ComfyUI: {', '.join(missing)}", file=sys.stderr)
    if unknown_ours:
        print(f"capture: example workflows name nodes the server does not have: {', '.join(unknown_ours)}",
              file=sys.stderr)
    if len(ours) < args.min_ours:
        print(f"capture: only {len(ours)} PoseFactory nodes served, expected at least {args.min_ours}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
