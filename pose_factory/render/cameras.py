"""Camera rigs and the projection model, matching Blender's camera exactly (sensor fit
horizontal, shift in units of the image width).

Pixel coordinates: x to the right, y down, the centre of the top-left pixel is (0, 0) — the
convention of image arrays, so a keypoint at (x, y) lies on pixel (round(x), round(y)).
A camera dict holds everything needed to project and to set up Blender; it goes into the manifest.
"""
from __future__ import annotations

import numpy as np

WORLD_UP = np.array([0.0, 0.0, 1.0])


def look_at_rotation(location, target, roll_deg=0.0) -> np.ndarray:
    """Camera-to-world rotation (columns: image right, image up, backwards), Blender's camera
    looking along its -Z. Positive roll turns the camera anticlockwise about its view axis."""
    f = np.asarray(target, float) - np.asarray(location, float)
    f /= np.linalg.norm(f)
    up_ref = WORLD_UP if abs(f @ WORLD_UP) < 0.999 else np.array([0.0, 1.0, 0.0])
    right = np.cross(f, up_ref)
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    r = np.stack([right, up, -f], 1)
    t = np.radians(roll_deg)
    rz = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    return r @ rz


def intrinsics(cam: dict, width: int, height: int) -> dict:
    """fx, fy in pixels (per metre of camera-space x/y for orthographic cameras), cx, cy in
    pixel-index coordinates."""
    if cam["orthographic"]:
        f = width / cam["ortho_scale"]
    else:
        f = cam["focal_length"] / cam["sensor_width"] * width
    sx, sy = cam["shift"]
    return {"fx": f, "fy": f, "cx": width / 2 - sx * width - 0.5, "cy": height / 2 + sy * width - 0.5,
            "width": width, "height": height, "orthographic": bool(cam["orthographic"]),
            "ortho_scale": cam.get("ortho_scale")}


def world_to_camera(cam: dict) -> np.ndarray:
    m = np.eye(4)
    r = np.asarray(cam["rotation"], float)
    m[:3, :3] = r.T
    m[:3, 3] = -r.T @ np.asarray(cam["location"], float)
    return m


def project(cam: dict, points) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) world points → (N, 2) pixel coordinates and (N,) depth along the view axis."""
    p = np.asarray(points, float)
    r = np.asarray(cam["rotation"], float)
    c = (p - np.asarray(cam["location"], float)) @ r  # camera space: x right, y up, z back
    depth = -c[:, 2]
    k = cam["intrinsics"]
    if k["orthographic"]:
        u, v = c[:, 0], c[:, 1]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            u, v = c[:, 0] / depth, c[:, 1] / depth
    xy = np.stack([k["cx"] + k["fx"] * u, k["cy"] - k["fy"] * v], 1)
    return xy, depth


def in_frame(cam: dict, xy, depth) -> np.ndarray:
    k = cam["intrinsics"]
    return ((depth > 0) & (xy[:, 0] >= -0.5) & (xy[:, 0] < k["width"] - 0.5)
            & (xy[:, 1] >= -0.5) & (xy[:, 1] < k["height"] - 0.5))


def finish_camera(cam: dict, width: int, height: int) -> dict:
    """cam (location, rotation, lens) completed in place with its intrinsics at width x height and
    its world-to-camera matrix, as plain lists: the form a manifest's views take."""
    cam["intrinsics"] = intrinsics(cam, width, height)
    cam["world_to_camera"] = world_to_camera(cam).tolist()
    cam["rotation"] = np.asarray(cam["rotation"]).tolist()
    cam["location"] = [float(x) for x in cam["location"]]
    return cam


def _fit_extent(points, target, rot, k, margin):
    """Per point: the depth (perspective) or half-extent (orthographic) needed to keep it inside
    the frame with the margin. Returns camera-space (x, y, along-view) and the pixel budgets."""
    q = (np.asarray(points) - target) @ rot
    w, h = k["width"], k["height"]
    budget = {  # pixels available from the principal point to each side of the kept area
        "right": (1 - margin) * w - 0.5 - k["cx"], "left": k["cx"] + 0.5 - margin * w,
        "down": (1 - margin) * h - 0.5 - k["cy"], "up": k["cy"] + 0.5 - margin * h,
    }
    if min(budget.values()) <= 0:
        raise ValueError("the camera shift leaves no room for the subject; use a smaller shift")
    return q, budget


def fit_distance(points, target, rot, k, margin) -> float:
    """Smallest distance from target along the view axis that keeps every point in frame."""
    q, b = _fit_extent(points, target, rot, k, margin)
    x, y, back = q[:, 0], q[:, 1], q[:, 2]  # back: towards the camera
    need = np.maximum.reduce([
        np.where(x > 0, k["fx"] * x / b["right"], -k["fx"] * x / b["left"]),
        np.where(y > 0, k["fy"] * y / b["up"], -k["fy"] * y / b["down"]),
    ])
    return float(np.max(need + back))  # depth of a point = distance - its 'back' coordinate


def fit_ortho_scale(points, target, rot, k, width, margin) -> float:
    q, b = _fit_extent(points, target, rot, k, margin)
    x, y = q[:, 0], q[:, 1]
    # pixels per metre = width / scale must keep |x| * ppm within the budget
    need = np.maximum.reduce([np.where(x > 0, x / b["right"], -x / b["left"]),
                              np.where(y > 0, y / b["up"], -y / b["down"])])
    return float(np.max(need) * width)


def orbit(spec_cams: dict, width: int, height: int, points) -> list[dict]:
    """N views around the subject. Azimuth 0 looks at the subject's front, 90 at its left
    side. points: (N, 3) world points that must stay in frame (every frame's posed body)."""
    points = np.asarray(points, float)
    lo, hi = points.min(0), points.max(0)
    target = (lo + hi) / 2
    radius = float(np.linalg.norm(hi - lo)) / 2
    n = spec_cams["views"]
    el = np.radians(spec_cams["elevation"])
    cams = []
    for i in range(n):
        az = np.radians(spec_cams["start_azimuth"] + 360.0 * i / n)
        direction = np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])
        cam = {"index": i, "name": f"v{i:02d}", "azimuth": float(np.degrees(az)) % 360,
               "elevation": spec_cams["elevation"], "focal_length": spec_cams["focal_length"],
               "sensor_width": spec_cams["sensor_width"], "orthographic": spec_cams["orthographic"],
               "ortho_scale": spec_cams["ortho_scale"], "shift": [0.0, 0.0], "roll": spec_cams["roll"]}
        cam["rotation"] = look_at_rotation(target + direction, target, spec_cams["roll"])
        cams.append((cam, direction))
    margin = spec_cams["margin"]
    if spec_cams["orthographic"] and spec_cams["ortho_scale"] == "auto":
        scale = 0.0
        for cam, _ in cams:
            cam["ortho_scale"] = 1.0
            k = intrinsics(cam, width, height)
            scale = max(scale, fit_ortho_scale(points, target, cam["rotation"], k, width, margin))
        for cam, _ in cams:
            cam["ortho_scale"] = scale
    dist = spec_cams["distance"]
    if dist == "auto":
        if spec_cams["orthographic"]:
            dist = 3 * radius + 2.0
        else:
            dist = max(fit_distance(points, target, c["rotation"], intrinsics(c, width, height), margin)
                       for c, _ in cams)
    out = []
    for cam, direction in cams:
        cam["location"] = target + direction * dist
        cam["distance"] = float(dist)
        out.append(finish_camera(cam, width, height))
    return out


def explicit(spec_list: list[dict], width: int, height: int) -> list[dict]:
    out = []
    for i, c in enumerate(spec_list):
        cam = {"index": i, "name": f"v{i:02d}", "focal_length": c["focal_length"],
               "sensor_width": c["sensor_width"], "orthographic": c["orthographic"],
               "ortho_scale": c["ortho_scale"], "shift": list(c["shift"]), "roll": c["roll"],
               "location": np.asarray(c["location"], float),
               "rotation": look_at_rotation(c["location"], c["look_at"], c["roll"])}
        out.append(finish_camera(cam, width, height))
    return out


def root_shifts(roots) -> np.ndarray:
    """(F, 3) horizontal moves of the subject's root from frame 0 (z kept 0): what a rig that
    follows the subject adds to its cameras' locations in each frame."""
    shift = np.asarray(roots, float) - np.asarray(roots, float)[0]
    shift[:, 2] = 0.0
    return shift


def moved(cam: dict, shift) -> dict:
    """The camera moved by shift (metres), looking the same way."""
    out = dict(cam, location=np.asarray(cam["location"], float) + np.asarray(shift, float))
    return finish_camera(out, cam["intrinsics"]["width"], cam["intrinsics"]["height"])


def framing_points(frame_vertices) -> np.ndarray:
    """The points an orbit keeps in frame: every third posed vertex of every frame (the worker
    and the viewer frame on the same points, so they get the same cameras)."""
    return np.concatenate([np.asarray(v)[::3] for v in frame_vertices])


def build_cameras(spec: dict, points) -> list[dict]:
    r = spec["render"]
    c = spec["cameras"]
    if c["type"] == "orbit":
        return orbit(c, r["width"], r["height"], points)
    return explicit(c["cameras"], r["width"], r["height"])
