#!/usr/bin/env python3
"""Writes docs/occluded_modes.png, the README's figure of the `occluded` choice: one side view of
a walking pose (the subject's right side, so the left arm and leg are the far ones), rendered
with the pack, as the shaded reference and the OpenPose image in hide, show and depth.

    .venv/bin/python scripts/make_occluded_figure.py [--out docs/occluded_modes.png]

Needs the worker environment (bpy); renders into a temporary local storage.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pose_factory import storage as storage_mod  # noqa: E402
from pose_factory.render import openpose  # noqa: E402
from pose_factory.imageio import read_png  # noqa: E402
from pose_factory.render import render_batch  # noqa: E402

W, H = 320, 448
SPEC = {"project": "figures", "render": {"width": W, "height": H, "passes": ["openpose", "keypoints", "shaded"],
                                         "shaded_samples": 16},
        "cameras": {"type": "orbit", "views": 1, "elevation": 0, "start_azimuth": 270},
        "subjects": [{"type": "mannequin", "poses": ["walk_left_step"]}]}


def make(out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="pf_fig_") as tmp:
        manifest, _ = render_batch(SPEC, storage_mod.LocalStorage(tmp))
        folder = Path(tmp) / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
        files = manifest["entries"][0]["files"]
        kp = json.loads((folder / files["keypoints"]["key"]).read_text())
        shaded = read_png(str(folder / files["shaded"]["key"]))
    tiles = [("shaded reference", shaded)] + [(f"occluded: {mode}", openpose.draw_pose(kp, occluded=mode))
                                              for mode in openpose.OCCLUDED_MODES]
    label, gap = 22, 4
    sheet = Image.new("RGB", (len(tiles) * W + (len(tiles) - 1) * gap, H + label), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, (name, img) in enumerate(tiles):
        x = i * (W + gap)
        sheet.paste(Image.fromarray(np.ascontiguousarray(img[:, :, :3])), (x, label))
        draw.text((x + 6, 5), name, fill=(235, 235, 235))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "occluded_modes.png")
    print(make(ap.parse_args(argv).out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
