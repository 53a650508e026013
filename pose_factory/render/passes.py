"""Turns Blender's exact float passes into ControlNet-ready images (DESIGN.md §5). Pure numpy."""
from __future__ import annotations

import io

import numpy as np

DEPTH_FLOOR = 0.15  # the subject's farthest point maps here, never as dark as the background
DEPTH_F32 = "depth_f32"  # a shard's metric depth, kept until the shards' merge writes its 8-bit depth
ADE20K_PERSON = (150, 5, 61)
NORMAL_CONVENTIONS = ("controlnet", "opengl", "directx")
NORMAL_DIRS = {"controlnet": "normal", "opengl": "normal_opengl", "directx": "normal_directx"}
# the pass names a spec asks for → the folders each writes
PASS_OUTPUTS = {
    "openpose": ["openpose"], "keypoints": ["keypoints"], "depth": ["depth"], "depth16": ["depth16"],
    "normal": ["normal", "normal_opengl", "normal_directx"], "seg": ["seg", "mask", "parts"],
    "shaded": ["shaded"],
}


def depth_range(depth: np.ndarray, mask: np.ndarray) -> tuple[float, float] | None:
    if not mask.any():
        return None
    d = depth[mask]
    return float(d.min()), float(d.max())


def merge_ranges(ranges):
    ranges = [r for r in ranges if r is not None]
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def depth_to_u8(depth, mask, near, far, floor=DEPTH_FLOOR) -> np.ndarray:
    """Near = 255, the far end of the range = floor × 255, background 0."""
    span = max(far - near, 1e-6)
    v = floor + (1.0 - floor) * (far - np.asarray(depth, np.float64)) / span  # float64 under numpy 1 and 2
    v = np.clip(v, floor, 1.0)
    out = np.where(mask, np.round(v * 255.0), 0).astype(np.uint8)
    return np.repeat(out[:, :, None], 3, axis=2)


def depth_f32_bytes(depth, mask) -> bytes:
    """A shard's metric depth as stored until the merge (DEPTH_F32): float32, 0 = background."""
    buf = io.BytesIO()
    np.savez_compressed(buf, depth=np.where(mask, depth, 0).astype(np.float32))
    return buf.getvalue()


def depth_u8_from_f32_bytes(data: bytes, near, far) -> np.ndarray:
    """The 8-bit depth of a stored DEPTH_F32 file: the same pixels the renderer writes itself."""
    with np.load(io.BytesIO(data)) as z:
        depth = z["depth"]
    return depth_to_u8(depth, depth > 0, near, far)


def depth_to_mm16(depth, mask) -> np.ndarray:
    """Metric depth in millimetres along the view axis, 0 for background, clipped at 65.535 m."""
    return np.where(mask, np.clip(np.round(depth * 1000.0), 1, 65535), 0).astype(np.uint16)


def world_to_camera_normals(normal_world: np.ndarray, cam_rotation) -> np.ndarray:
    """Cycles' Normal pass is in world space; rotate into the camera frame (x right, y up,
    z towards the viewer) and renormalise."""
    r = np.asarray(cam_rotation, np.float32)
    n = normal_world.astype(np.float32) @ r  # row vectors: n_cam = R^T n_world
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    return n / np.maximum(length, np.float32(1e-12))


def normals_to_rgb(n_cam, mask, convention="controlnet", background="flat") -> np.ndarray:
    """controlnet: red = left, green = up, blue = front (ControlNet 1.1 / NYU-V2);
    opengl: red = right, green = up; directx: red = right, green = down."""
    if convention not in NORMAL_CONVENTIONS:
        raise ValueError(f"normal convention {convention!r} unknown; allowed: {', '.join(NORMAL_CONVENTIONS)}")
    flip = np.array([convention == "controlnet", convention == "directx", False])
    n = np.where(flip, -n_cam, n_cam).astype(np.float32)
    rgb = np.clip(np.rint((n + 1.0) * 127.5), 0, 255).astype(np.uint8)
    rgb[~mask] = (128, 128, 255) if background == "flat" else (0, 0, 0)
    return rgb


def rgb_to_normals(rgb, convention="controlnet") -> np.ndarray:
    """The inverse of normals_to_rgb (for checks and loaders)."""
    n = rgb.astype(np.float64) / 255.0 * 2.0 - 1.0
    if convention == "controlnet":
        n[..., 0] = -n[..., 0]
    elif convention == "directx":
        n[..., 1] = -n[..., 1]
    return n


# the shaded reference's background, linear RGB (Blender's world colour × strength)
SHADED_BACKGROUND = (0.231, 0.242, 0.2585)


def _srgb_lut():
    lin = np.linspace(0.0, 1.0, 4096)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.rint(srgb * 255).astype(np.uint8)


SRGB_LUT = _srgb_lut()  # Blender's "Standard" view transform, linear → 8-bit sRGB


def shaded_from_combined(rgba, labels, background=SHADED_BACKGROUND) -> np.ndarray:
    """The shaded reference from the 1-sample data render: its Combined pass (the emissive clay
    at each pixel centre, over a transparent film) put on the background, encoded as Blender's
    Standard transform would, and smoothed only where a part or a colour edge runs, so edges
    look anti-aliased at no extra render."""
    lin = rgba[..., :3] + (1.0 - rgba[..., 3:4]) * np.asarray(background, np.float32)
    img = SRGB_LUT[np.clip(np.rint(lin * 4095.0), 0, 4095).astype(np.int32)]
    key = labels.astype(np.int32) * 16 + img.max(axis=-1) // 32  # part, and coarse brightness
    edge = np.zeros(key.shape, bool)
    dx, dy = key[:, 1:] != key[:, :-1], key[1:] != key[:-1]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:] |= dy
    edge[:-1] |= dy
    # 3×3 binomial blur (1 2 1) ⊗ (1 2 1) / 16
    p = np.pad(img.astype(np.uint16), ((1, 1), (1, 1), (0, 0)), mode="edge")
    h = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]
    blur = ((h[:-2] + 2 * h[1:-1] + h[2:] + 8) // 16).astype(np.uint8)
    return np.where(edge[..., None], blur, img)


def seg_image(mask) -> np.ndarray:
    out = np.zeros(mask.shape + (3,), np.uint8)
    out[mask] = ADE20K_PERSON
    return out


def mask_image(mask) -> np.ndarray:
    return np.where(mask, 255, 0).astype(np.uint8)
