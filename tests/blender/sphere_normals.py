"""Renders a smooth unit sphere through the real data-pass set-up from a camera at azimuth 37°,
elevation 25°, roll 10°, and writes what the pipeline produces next to the analytic truth.
Run by tests/test_render_exact.py in a child process: python tests/blender/sphere_normals.py OUT.npz"""
import sys

import bpy
import numpy as np

from blender_scripts import scene as S
read_data_passes = S.read_data_passes
from pose_factory.render import cameras, passes

out = sys.argv[1]
W, H = 256, 192
sc = S.reset()
S.setup_data_render(sc, W, H)
bpy.ops.mesh.primitive_uv_sphere_add(segments=128, ring_count=64, radius=1.0)
ob = bpy.context.object
ob.pass_index = 1
bpy.ops.object.shade_smooth()
az, el, roll, dist = np.radians(37), np.radians(25), 10.0, 4.0
loc = dist * np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])
cam = cameras.explicit([{"location": loc.tolist(), "look_at": [0, 0, 0], "roll": roll, "focal_length": 50.0,
                         "orthographic": False, "ortho_scale": 2.5, "shift": [0.0, 0.0], "sensor_width": 36.0}], W, H)[0]
cam_ob = S.make_camera(sc)
S.set_camera(cam_ob, cam, W, H)
S.render_to(sc, out + ".exr")
depth, normal_w, index, _rgba = read_data_passes(out + ".exr")
mask = index > 0
n_cam = passes.world_to_camera_normals(normal_w, cam["rotation"])
encoded = {c: passes.normals_to_rgb(n_cam, mask, c) for c in passes.NORMAL_CONVENTIONS}
np.savez(out, depth=depth, mask=mask, rotation=np.array(cam["rotation"]), location=loc,
         fx=cam["intrinsics"]["fx"], cx=cam["intrinsics"]["cx"], cy=cam["intrinsics"]["cy"],
         **{f"rgb_{c}": v for c, v in encoded.items()})
