"""ComfyUI core's ``LOAD3D_CAMERA`` (camera_info of Load 3D / Preview 3D / Create Camera Info) as
one of our listed cameras.

Core's definition (comfy_api/latest/_io.py, ``Load3DCamera.CameraInfo``): three.js conventions,
right-handed, Y-up, the camera looking down its local -Z; ``position`` and ``target`` {x, y, z} in
scene units (metres here), ``zoom`` (1 = 100 %), ``cameraType`` 'perspective' | 'orthographic',
optional ``quaternion`` {x, y, z, w} (the camera's world rotation, roll included), ``fov``
(vertical, degrees; core's nodes use 35 when it is absent), ``aspect``, ``near``, ``far`` and, for an
orthographic camera, ``frustum`` {left, right, top, bottom}.

Our world is Z-up with the subject facing -Y (pose_factory/render/rig.py). Y-up → Z-up is the rotation
(x, y, z) → (x, -z, y), the one Blender's glTF importer uses, so a glTF model's front (+Z) is our
front (-Y) and its +X (the model's left) is ours. three.js keeps the vertical field of view for
any image aspect; our cameras fit the sensor horizontally, so the focal length is worked out for
the render size (width, height): the same picture three.js makes at that size.
"""
from __future__ import annotations

import math

import numpy as np

from ..render.cameras import look_at_rotation
from ..errors import SpecError, echo

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
DEFAULT_FOV = 35.0  # degrees: what core's nodes assume when camera_info has no fov
KEYS = ("position", "target", "zoom", "cameraType", "quaternion", "fov", "aspect", "near", "far", "frustum")
TYPES = ("perspective", "orthographic")


def _number(v, field: str, lo=-math.inf, hi=math.inf, allowed="a finite number") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise SpecError(f"camera_info.{field}", f"got {echo(v)}", allowed)
    return float(v)


def _xyz(v, field: str, names=("x", "y", "z")) -> np.ndarray:
    if not isinstance(v, dict) or any(k not in v for k in names):
        raise SpecError(f"camera_info.{field}", f"got {echo(v)}", "{" + ", ".join(f'"{k}": number' for k in names) + "}")
    return np.array([_number(v[k], f"{field}.{k}") for k in names])


def quaternion_matrix(q) -> np.ndarray:
    """Rotation matrix of a unit quaternion (x, y, z, w), normalized first."""
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def camera_from_load3d(info, width: int, height: int, sensor_width: float = 36.0) -> dict:
    """One listed camera ({location, look_at, roll, focal_length, orthographic, ortho_scale, shift,
    sensor_width}, spec.py's explicit camera) that renders at width x height the picture three.js
    makes from camera_info. SpecError names a wrong field."""
    if not isinstance(info, dict):
        raise SpecError("camera_info", f"got {echo(info)}", "a LOAD3D_CAMERA object {position, target, zoom, cameraType}")
    unknown = sorted(set(info) - set(KEYS))
    if unknown:
        raise SpecError("camera_info", f"unknown key(s) {echo(unknown)}", ", ".join(KEYS))
    kind = info.get("cameraType", "perspective")
    if kind not in TYPES:
        raise SpecError("camera_info.cameraType", f"got {echo(kind)}", " or ".join(TYPES))
    zoom = _number(info.get("zoom", 1.0), "zoom", 1e-6, 1e6, "a number above 0 (1 = 100 %)")
    location = Y_UP_TO_Z_UP @ _xyz(info.get("position"), "position")
    target = Y_UP_TO_Z_UP @ _xyz(info.get("target"), "target")
    distance = float(np.linalg.norm(target - location))
    roll = 0.0
    if info.get("quaternion") is not None:
        q = _xyz(info["quaternion"], "quaternion", ("x", "y", "z", "w"))
        if np.linalg.norm(q) < 1e-6:
            raise SpecError("camera_info.quaternion", f"got {echo(info['quaternion'])}", "a unit quaternion")
        rot = Y_UP_TO_Z_UP @ quaternion_matrix(q)  # columns: camera right, up, back in our world
        look_at = location - rot[:, 2] * max(distance, 1.0)  # the quaternion decides where it looks
        r0 = look_at_rotation(location, look_at, 0.0)
        rz = r0.T @ rot
        roll = math.degrees(math.atan2(rz[1, 0], rz[0, 0]))
    else:
        if distance < 1e-3:
            raise SpecError("camera_info.target", "got the camera's own position", "a point away from the camera")
        look_at = target
    cam = {"location": [float(c) for c in location], "look_at": [float(c) for c in look_at], "roll": roll,
           "sensor_width": float(sensor_width), "shift": [0.0, 0.0]}
    if kind == "perspective":
        fov = _number(info.get("fov", DEFAULT_FOV), "fov", 0.01, 179.0, "degrees above 0 and below 180")
        half = math.tan(math.radians(fov) / 2) / zoom  # three.js: zoom divides the frustum
        fy = (height / 2) / half  # pixels
        return dict(cam, orthographic=False, ortho_scale=2.5, focal_length=fy * sensor_width / width)
    f = info.get("frustum")
    if not isinstance(f, dict):
        raise SpecError("camera_info.frustum", f"got {echo(f)}",
                        "{left, right, top, bottom} (an orthographic camera needs its frustum)")
    left, right, top, bottom = (_number(f.get(k), f"frustum.{k}") for k in ("left", "right", "top", "bottom"))
    if right <= left or top <= bottom:
        raise SpecError("camera_info.frustum", f"got {echo(f)}", "right > left and top > bottom")
    visible_h = (top - bottom) / zoom
    scale = visible_h * width / height  # our ortho_scale is the visible width
    shift = [(right + left) / 2 / scale, (top + bottom) / 2 / scale]
    return dict(cam, orthographic=True, ortho_scale=scale, focal_length=50.0, shift=shift)
