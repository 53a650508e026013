"""Renders one batch in ONE Blender process: every (view, frame) of a normalized JobSpec, with
every subject of it as a Person (blender_scripts/people.py) and its props.

Run by pose_factory.render in the worker environment:
    python -m blender_scripts.render_batch --spec spec.json --out WORKDIR
Writes WORKDIR/<folder>/vNN_fNNNN.<ext> and WORKDIR/result.json (cameras, 3D joints, depth
range, timings). Progress goes to stdout as lines '@@progress {json}'. Blender's scratch files go
to a pf_exr_* folder next to WORKDIR (inside the caller's work folder), removed when it ends.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

T_PROCESS = time.perf_counter()

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Vector  # noqa: E402

from blender_scripts import people as P, scene as S  # noqa: E402
from blender_scripts.output import BG_DEPTH, Writer, finish_depth, progress, write_data_passes  # noqa: E402,F401
from pose_factory import imageio, spec as spec_mod  # noqa: E402
from pose_factory.render import cameras, mannequin as mq, openpose  # noqa: E402


def cast_from_camera(scene, depsgraph, cam, p, depth):
    """The first hit of the camera's ray towards world point p (planar depth ``depth``): (hit,
    where, object). An orthographic camera's ray starts just in front of p, along the view axis."""
    forward = -np.asarray(cam["rotation"])[:, 2]
    origin = p - forward * (depth + 0.01) if cam["orthographic"] else np.asarray(cam["location"])
    d = p - origin
    dist = float(np.linalg.norm(d))
    hit, where, _n, _f, ob, _m = scene.ray_cast(depsgraph, Vector(origin), Vector(d / dist), distance=dist + 1e-4)
    return hit, np.array(where), ob


def visibility(scene, depsgraph, cam, points, xy, depth, radius, own_parts, person=0, owner=None):
    """DESIGN.md §5: a joint is visible when the camera ray to it first hits its own body part,
    or hits the body within that joint's radius of it; joints outside the frame, or behind a prop
    or another person, are hidden. owner: {object name: person index} of every person's mesh
    objects (people.owners); the part label of a hit is its object's pass_index."""
    vis = cameras.in_frame(cam, xy, depth)
    for i in np.nonzero(vis)[0]:
        hit, where, ob = cast_from_camera(scene, depsgraph, cam, points[i], depth[i])
        if not hit:
            continue
        near = np.linalg.norm(where - points[i]) <= radius[i]
        name = ob.original.name if ob else ""
        # 0: a prop or another person hides what is behind it
        label = ob.original.pass_index if owner is not None and owner.get(name) == person else 0
        vis[i] = bool(label and (near or label in own_parts[i]))
    return vis


def keypoint_frame(scene, cam, person, kp3d, owner, W, H):
    """The POSE_KEYPOINT frame of one person seen by cam (pose_keypoint_frame: covered points and
    depths in our own field)."""
    xy, zdepth = cameras.project(cam, kp3d)
    vis = visibility(scene, bpy.context.evaluated_depsgraph_get(), cam, kp3d, xy, zdepth, person.radius,
                     person.own_parts, person.index, owner)
    inside = cameras.in_frame(cam, xy, zdepth)  # covered points inside it keep their place
    return openpose.pose_keypoint_frame(
        *[(xy[sl], vis[sl], inside[sl], zdepth[sl]) for sl in (mq.KP_BODY, mq.KP_LHAND, mq.KP_RHAND, mq.KP_FACE)],
        W, H, feet=(xy[mq.KP_FEET], vis[mq.KP_FEET], inside[mq.KP_FEET], zdepth[mq.KP_FEET]))


def joints_record(kp3d) -> dict:
    """A person's 3D points in result.json: the 18 body joints by name and every keypoint
    (rounded to the micrometre); a point a rig lacks (NaN) is null."""
    kp = np.asarray(kp3d, float)

    def plain(rows):
        return [[None if c != c else c for c in p] for p in rows.tolist()]

    return {"joints": dict(zip(mq.keypoint_names()[:18], plain(kp[:18]))), "keypoints": plain(kp.round(6))}


def add_props(scene, spec):
    """The spec's props (pose_factory.mesh.props), placed in the world by the worker as .npz files,
    each a clay object labelled props.label(i) (scene.add_mesh, as a mesh render's mesh)."""
    if not spec.get("prop_files"):
        return
    from pose_factory.mesh import meshdata, props

    for i, (path, prop) in enumerate(zip(spec["prop_files"], spec["props"])):
        vertices, faces = meshdata.read_npz(path)
        S.add_mesh(scene, vertices, faces, smooth=prop["shading"] == "smooth", name=f"prop_{i:02d}",
                             label=props.label(i))


def render(spec, out, views=None, scratch=None):
    """views: (start, stop) to render only those views (a shard); cameras come from the whole spec.
    scratch: a folder for Blender's files, each removed once read (default: out)."""
    if spec.get("kind") == "mesh_passes":  # any mesh instead of the mannequin: the same passes
        from blender_scripts import render_mesh

        return render_mesh.render(spec, out, views, scratch, t_process=T_PROCESS)
    t_start = time.perf_counter()
    r = spec["render"]
    W, H = r["width"], r["height"]
    wanted = set(r["passes"])
    scene = S.reset()
    device = S.use_gpu_if_asked(scene, r["device"])
    people = P.build_people(scene, spec)
    owner = P.owners(people)
    several = len(people) > 1
    n_frames = spec_mod.n_frames(spec)
    # a rig that follows the subject moves with person 0's root (horizontally): it is fitted to
    # every frame's people as seen from the moving rig, and each frame's cameras are moved by the
    # root's shift
    follow = bool(spec["cameras"].get("follow"))
    shifts = (cameras.root_shifts([P.root(people[0], f) for f in range(n_frames)]) if follow
              else np.zeros((n_frames, 3)))
    cams = cameras.build_cameras(spec, cameras.framing_points(
        [person.framing_vertices(f) - shifts[f] for f in range(n_frames) for person in people]))

    add_props(scene, spec)
    if several:
        S.use_instance_pass(scene)
    cam_ob = S.make_camera(scene)
    timings = {"startup": time.perf_counter() - T_PROCESS, "data_passes": 0.0, "shaded": 0.0, "other": 0.0}
    start, stop = views or (0, len(cams))
    if not 0 <= start < stop <= len(cams):
        raise SystemExit(f"--views {start}:{stop}: allowed a range within 0:{len(cams)}")
    mine = list(range(start, stop))
    total = len(mine) * n_frames * (2 if "shaded" in wanted and r["shaded_samples"] > 1 else 1)
    writer = Writer(out)
    depths = {}
    joints_3d = []
    tmp = scratch or out
    done = 0
    progress("rendering", 0, total)
    for f in range(n_frames):
        for person in people:
            person.pose(f)
        kp3d = [person.keypoints(f) for person in people]
        joints_3d.append(joints_record(kp3d[0]))
        if several:
            joints_3d[-1]["people"] = [joints_record(k) for k in kp3d]
        S.setup_data_render(scene, W, H)
        for v in mine:
            cam = cameras.moved(cams[v], shifts[f]) if follow else cams[v]
            t0 = time.perf_counter()
            S.set_camera(cam_ob, cam, W, H)
            exr = os.path.join(tmp, "data.exr")
            S.render_to(scene, exr)
            depth, normal_w, index, rgba, *instance = S.read_data_passes(exr, instance=several)
            os.remove(exr)
            t1 = time.perf_counter()
            mask = index > 0
            depth = np.where(mask, depth, BG_DEPTH)
            frames = [keypoint_frame(scene, cam, person, k, owner, W, H) for person, k in zip(people, kp3d)]
            frame_kp = openpose.join_frames(frames) if several else frames[0]
            writer.json("keypoints", v, f, frame_kp)
            if "openpose" in wanted:
                op = r["openpose"]
                writer.image("openpose", v, f, openpose.draw_pose(frame_kp, hands=op["hands"], face=op["face"],
                                                                 sdxl_sticks=op["sdxl_sticks"],
                                                                 occluded=op["occluded"],
                                                                 feet=op.get("feet", False)))
            write_data_passes(writer, wanted, v, f, cam, depth, normal_w, index, rgba, mask, depths,
                              r["shaded_samples"])
            if several and "seg" in wanted:  # 0: background or a prop, k + 1: person k
                writer.image("instance", v, f, np.where(mask, instance[0], 0).astype(np.uint8))
            timings["data_passes"] += t1 - t0
            timings["other"] += time.perf_counter() - t1
            done += 1
            progress("rendering", done, total, view=v, frame=f)
        if "shaded" in wanted and r["shaded_samples"] > 1:  # more samples: a render of its own
            S.setup_shaded_render(scene, W, H, r["shaded_samples"])
            for v in mine:
                cam = cameras.moved(cams[v], shifts[f]) if follow else cams[v]
                t0 = time.perf_counter()
                S.set_camera(cam_ob, cam, W, H)
                bmp = os.path.join(tmp, "shaded.bmp")
                S.render_to(scene, bmp)
                # encoded by us, like every pass: Blender's PNGs also carry Cycles' timings,
                # so equal renders would differ in their bytes
                writer.image("shaded", v, f, imageio.read_png(bmp)[:, :, :3])
                os.remove(bmp)
                timings["shaded"] += time.perf_counter() - t0
                done += 1
                progress("rendering", done, total, view=v, frame=f)
    t0 = time.perf_counter()
    deferred = r["depth_range"] == "batch" and (start, stop) != (0, len(cams))
    batch_range = finish_depth(writer, depths, r["depth_range"], deferred)
    writer.finish()
    timings["other"] += time.perf_counter() - t0
    timings["total"] = time.perf_counter() - T_PROCESS
    timings["render_loop"] = time.perf_counter() - t_start
    result = {
        "blender_version": bpy.app.version_string, "device": device,
        "cameras": cams, "frames": n_frames, "joints_3d": joints_3d,
        "keypoint_names": mq.keypoint_names(),
        "depth_range": {"near": batch_range[0], "far": batch_range[1]} if batch_range else None,
        **({"rig_reports": {str(p.index): p.report for p in people if p.report is not None}}
           if any(p.report is not None for p in people) else {}),
        "entries": [{"view": v, "frame": f, "files": writer.files[(v, f)],
                     **({"camera_shift": [float(c) for c in shifts[f]]} if follow else {})}
                    for f in range(n_frames) for v in mine],
        "views": [start, stop],
        "timings": timings,
    }
    with open(os.path.join(out, "result.json"), "w") as fh:
        json.dump(result, fh)
    progress("extracting", total, total)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spec", help="normalized JobSpec JSON file")
    ap.add_argument("--out", help="work folder for the rendered files")
    ap.add_argument("--views", help="START:STOP, render only these views (a shard)")
    ap.add_argument("--standby", action="store_true",
                    help="import Blender, then wait for one line on stdin: {\"spec\", \"out\", \"views\"}")
    a = ap.parse_args(argv)
    if a.standby:  # a warm child: bpy is imported already when the job arrives
        line = sys.stdin.readline()
        if not line.strip():
            return 0  # the parent let it go unused
        job = json.loads(line)
        global T_PROCESS
        T_PROCESS = time.perf_counter()  # start-up counts from the job's arrival, not the wait
        a.spec, a.out, views = job["spec"], job["out"], job.get("views")
    else:
        if not (a.spec and a.out):
            ap.error("--spec and --out are required (or --standby)")
        views = [int(x) for x in a.views.split(":")] if a.views else None
    with open(a.spec) as fh:
        spec = json.load(fh)
    os.makedirs(a.out, exist_ok=True)
    # Blender's scratch files next to the output, in the caller's work folder: removed here when
    # the render ends or fails, and with that folder by the caller when this process is killed
    with tempfile.TemporaryDirectory(prefix="pf_exr_", dir=os.path.dirname(os.path.abspath(a.out))) as scratch:
        render(spec, a.out, views, scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
