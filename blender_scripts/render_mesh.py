"""Renders the exact passes of any mesh (pose_factory.mesh): depth, depth16, normal (three
conventions), seg/mask/parts and the shaded reference, with the mannequin's render set-up, pass
encoders and file layout, so the same loaders read them. Called by render_batch.render for a spec
of kind 'mesh_passes'; the mesh comes as an .npz (vertices Z-up in metres, triangle faces) named by
the spec's 'mesh_file' (or any file meshdata.load_file reads)."""
from __future__ import annotations

import json
import os
import time

import bpy
import numpy as np

from blender_scripts import output
from blender_scripts import scene as S
from pose_factory import imageio
from pose_factory.render import cameras
from pose_factory.mesh import meshdata


def render(spec, out, views=None, scratch=None, t_process=None):
    """The passes of spec['mesh_file'] into out (render_batch.render's form); t_process: when this
    Blender process started (its timings' start-up), default now."""
    t_process = time.perf_counter() if t_process is None else t_process
    t0 = time.perf_counter()
    r = spec["render"]
    W, H = r["width"], r["height"]
    wanted = set(r["passes"])
    path = spec["mesh_file"]
    vertices, faces = meshdata.read_npz(path) if path.endswith(".npz") else meshdata.load_file(path)
    cams = cameras.build_cameras(spec, meshdata.fit_points(vertices))
    scene = S.reset()
    device = S.use_gpu_if_asked(scene, r["device"])
    S.add_mesh(scene, vertices, faces, smooth=spec["mesh"]["shading"] == "smooth")
    cam_ob = S.make_camera(scene)
    start, stop = views or (0, len(cams))
    writer = output.Writer(out)
    depths = {}
    tmp = scratch or out
    timings = {"startup": time.perf_counter() - t_process, "data_passes": 0.0, "shaded": 0.0}
    output.progress("rendering", 0, stop - start)
    S.setup_data_render(scene, W, H)
    for v in range(start, stop):
        t1 = time.perf_counter()
        S.set_camera(cam_ob, cams[v], W, H)
        exr = os.path.join(tmp, "data.exr")
        S.render_to(scene, exr)
        depth, normal_w, index, rgba = S.read_data_passes(exr)
        os.remove(exr)
        mask = index > 0
        depth = np.where(mask, depth, output.BG_DEPTH)
        output.write_data_passes(writer, wanted, v, 0, cams[v], depth, normal_w, index, rgba, mask, depths,
                             r["shaded_samples"])
        timings["data_passes"] += time.perf_counter() - t1
        output.progress("rendering", v - start + 1, stop - start, view=v, frame=0)
    if "shaded" in wanted and r["shaded_samples"] > 1:
        S.setup_shaded_render(scene, W, H, r["shaded_samples"])
        for v in range(start, stop):
            t1 = time.perf_counter()
            S.set_camera(cam_ob, cams[v], W, H)
            bmp = os.path.join(tmp, "shaded.bmp")
            S.render_to(scene, bmp)
            writer.image("shaded", v, 0, imageio.read_png(bmp)[:, :, :3])
            os.remove(bmp)
            timings["shaded"] += time.perf_counter() - t1
    deferred = r["depth_range"] == "batch" and (start, stop) != (0, len(cams))
    batch_range = output.finish_depth(writer, depths, r["depth_range"], deferred)
    writer.finish()
    timings["total"] = time.perf_counter() - t_process
    timings["render_loop"] = time.perf_counter() - t0
    result = {
        "blender_version": bpy.app.version_string, "device": device, "cameras": cams, "frames": 1,
        "joints_3d": None, "depth_range": {"near": batch_range[0], "far": batch_range[1]} if batch_range else None,
        "entries": [{"view": v, "frame": 0, "files": writer.files[(v, 0)]} for v in range(start, stop)],
        "views": [start, stop], "timings": timings,
    }
    with open(os.path.join(out, "result.json"), "w") as fh:
        json.dump(result, fh)
    output.progress("extracting", stop - start, stop - start)
    return result
