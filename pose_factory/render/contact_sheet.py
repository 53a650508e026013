"""A contact sheet of a batch: one row per (frame, view), one column per pass, plus the
skeleton laid over the shaded render, so a person sees at a glance what was rendered."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .. import imageio

COLUMNS = ("shaded", "overlay", "openpose", "depth", "normal", "normal_opengl", "normal_directx",
           "seg", "parts", "depth16")


def _as_rgb(name, img):
    if name == "parts":  # label ids → distinct colours
        rng = np.random.default_rng(7)
        lut = rng.integers(60, 255, (256, 3), dtype=np.uint8)
        lut[0] = 0
        return lut[img]
    if name == "depth16":
        v = img.astype(np.float64)
        m = v > 0
        if m.any():
            lo, hi = v[m].min(), v[m].max()
            v = np.where(m, 255 * (0.15 + 0.85 * (hi - v) / max(hi - lo, 1)), 0)
        return np.repeat(v.astype(np.uint8)[:, :, None], 3, 2)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, 2)
    return img


def make_sheet(batch_dir, manifest: dict, out_path: str, thumb: int = 160, max_rows: int = 16) -> str:
    files0 = manifest["entries"][0]["files"]
    cols = [c for c in COLUMNS if c in files0 or (c == "overlay" and {"shaded", "openpose"} <= set(files0))]
    rows = manifest["entries"][:max_rows]
    w, h = manifest["width"], manifest["height"]
    tw, th = thumb, int(round(thumb * h / w))
    label_h = 18
    sheet = Image.new("RGB", (len(cols) * tw, label_h + len(rows) * th), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(cols):
        draw.text((c * tw + 4, 3), name, fill=(230, 230, 230))
    for r, entry in enumerate(rows):
        imgs = {name: _as_rgb(name, imageio.read_png(f"{batch_dir}/{entry['files'][name]['key']}"))
                for name in cols if name != "overlay"}
        if "overlay" in cols:  # the skeleton over a dimmed shaded render: do they line up?
            pose = imgs["openpose"]
            drawn = pose.max(axis=2, keepdims=True) > 0
            imgs["overlay"] = np.where(drawn, pose, (imgs["shaded"] * 0.6).astype(np.uint8))
        for c, name in enumerate(cols):
            tile = Image.fromarray(imgs[name]).resize((tw, th), Image.BILINEAR)
            sheet.paste(tile, (c * tw, label_h + r * th))
        draw.text((4, label_h + r * th + 3), f"v{entry['view']:02d} f{entry['frame']:04d}", fill=(255, 255, 255))
    sheet.save(out_path)
    return out_path
