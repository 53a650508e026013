"""A BVH clip as a pose list: checked (bvh.py), read by Blender's own importer in a worker-
environment child process (blender_scripts/read_bvh.py), its frames selected, retargeted onto
the mannequin (retarget.py), with a report of what was mapped, clamped and left out."""
from __future__ import annotations

import os
import subprocess

import numpy as np

from .. import worker_process as render
from ..render import rig
from ..render.shape import normalize_shape
from ..errors import SpecError
from ..parsing import decode_utf8
from ..spec import MAX_POSES
from . import bvh, names, retarget


def read_text(path) -> str:
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size > bvh.MAX_BYTES:
        raise SpecError(os.path.basename(path), f"{size} bytes", f"a BVH file of at most {bvh.MAX_BYTES // 2**20} MB")
    with open(path, "rb") as fh:
        return decode_utf8(fh.read(), lambda m: SpecError(os.path.basename(path), m))


def select_frames(total: int, clip_fps: float, start: int = 0, end: int = -1, step: int = 1,
                  fps: float = 0.0) -> list:
    """The clip's frames (0-based) for frames start..end (inclusive, -1: the last), every step-th;
    fps > 0 resamples that span to fps (the nearest clip frame for each output frame)."""
    end = total - 1 if end < 0 else end
    if not 0 <= start < total:
        raise SpecError("start", f"got {start}", f"0 to {total - 1} (the clip has {total} frames)")
    if not start <= end < total:
        raise SpecError("end", f"got {end}", f"-1 (the last frame) or {start} to {total - 1}")
    if step < 1:
        raise SpecError("step", f"got {step}", "1 or more")
    if fps < 0 or fps > 1000:
        raise SpecError("fps", f"got {fps:g}", "0 (the clip's own rate) or up to 1000")
    if fps:
        stride = step * clip_fps / fps
        count = int(np.floor((end - start) / stride + 1e-9)) + 1
        frames = [start + int(np.floor(k * stride + 0.5)) for k in range(count)]
    else:
        frames = list(range(start, end + 1, step))
    if len(frames) > MAX_POSES:
        raise SpecError("frames", f"the selection gives {len(frames)} frames",
                        f"at most {MAX_POSES} per batch: a larger step, a lower fps or a shorter range")
    return frames


def read_bones(path, frames: list, python: str | None = None, feet: list = (), clip_frames: int = 0) -> dict:
    """Blender's import of the (checked) clip: bone names and world matrices at the frames, and
    the feet bones' heads and tails in each of the clip's first clip_frames frames."""
    with render.work_folder() as work:
        out = os.path.join(work, "bones.npz")
        cmd = [python or render.worker_python(), "-m", "blender_scripts.read_bvh", "--bvh", os.fspath(path),
               "--frames", ",".join(map(str, frames)), "--feet", ",".join(feet),
               "--clip-frames", str(clip_frames), "--out", out]
        proc = subprocess.run(cmd, cwd=str(render.REPO_ROOT), env=render.child_env(os.path.join(work, "tmp")),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise render.RenderError(f"Blender could not import the BVH clip (exit {proc.returncode}):\n{tail}")
        with np.load(out) as z:
            return {k: z[k] for k in z.files}


def report_text(source: str, clip: bvh.BvhClip, frames: list, naming: str, found: dict, unknown: list,
                rep: dict) -> str:
    lines = [f"clip: {source}: {clip.frames} frames at {clip.fps:.3g} fps, {len(clip.joints)} bones",
             f"frames used: {len(frames)} ({frames[0]}..{frames[-1]})",
             f"naming: {naming}; {len(found)} of the mannequin's {len(rig.JOINT_NAMES)} joints mapped",
             f"root motion scale: {rep['scale']:.4f}"]
    if rep["unmapped_joints"]:
        lines.append("mannequin joints with no bone (kept at rest): " + ", ".join(rep["unmapped_joints"]))
    for side, name in (("l", "left"), ("r", "right")):
        if not rep["hands"][side]:
            lines.append(f"{name} hand: no finger bones, the 'relaxed' hand shape")
    lines.append("clip bones not used: " + (", ".join(unknown) if unknown else "none"))
    fl = rep["floor"]
    at = f"clip frame {frames[fl['frame']]} (pose {fl['frame']})"
    where = (f"the mannequin's feet touch z = 0 in {at}" if not fl["above"] > 5e-5 else
             f"the frames used are not its lowest: in {at} the mannequin's feet are {fl['above']:.3f} m "
             "above z = 0, as the clip's lowest of them are above its floor")
    lines.append(f"floor: the clip's feet are lowest in its frame {fl['clip_frame']} "
                 f"(of 0..{fl['clip_frames'] - 1}); {where}")
    if rep["clamped"]:
        lines.append("clamped to the joint limits (frames, worst excess in degrees):")
        for k, c in sorted(rep["clamped"].items()):
            lines.append(f"  {k}: {c['frames']} frames, {c['worst']:.1f}")
    else:
        lines.append("clamped: nothing (every frame within the joint limits)")
    if rep["offset_clamped_frames"]:
        lines.append(f"root motion beyond 5 m clamped in {rep['offset_clamped_frames']} frames")
    return "\n".join(lines)


def load_clip_from_storage(storage, key: str, **options) -> tuple[list, str]:
    """load_clip of a BVH stored under key (local folder or R2), copied into a work folder."""
    if not key.lower().endswith(".bvh"):
        raise SpecError("key", f"got {key[:80]!r}", "a storage key of a .bvh file")
    data = storage.get_bytes(key)  # StorageError names a bad or missing key
    if len(data) > bvh.MAX_BYTES:
        raise SpecError(key, f"{len(data)} bytes", f"a BVH file of at most {bvh.MAX_BYTES // 2**20} MB")
    with render.work_folder() as work:
        path = os.path.join(work, os.path.basename(key))
        with open(path, "wb") as fh:
            fh.write(data)
        return load_clip(path, **options)


def load_clip(path, height: float = 1.75, start: int = 0, end: int = -1, step: int = 1, fps: float = 0.0,
              naming: str = "auto", custom_map: str = "", python: str | None = None,
              shape=None) -> tuple[list, str]:
    """(pose entries, one per selected frame, and the retarget report text) of a BVH file, for a
    mannequin of that height and body shape (a preset name or object, shape.normalize_shape)."""
    shape = normalize_shape(shape, "subject.shape")
    source = os.path.basename(os.fspath(path))
    clip = bvh.parse(read_text(path), source)
    used, found, unknown = names.resolve(clip.names, naming, custom_map)
    frames = select_frames(clip.frames, clip.fps, start, end, step, fps)
    data = read_bones(path, frames, python, [clip.names[i] for i in retarget.foot_bones(found)], clip.frames)
    bone_names = [str(n) for n in data["names"]]
    if bone_names != clip.names:  # Blender names bones itself; they must be the clip's
        raise render.RenderError(f"Blender's bones differ from the clip's joints: {bone_names[:5]} ...")
    entries, rep = retarget.retarget(data, found, height, frames, shape)
    return entries, report_text(source, clip, frames, used, found, unknown, rep)
