"""What a render of the mannequin (render_batch) and of any mesh (render_mesh) share: progress
lines for the parent, the file writer of a render's work folder, the image passes of one rendered
view and the 8-bit depth's range. Runs in the worker environment (numpy, OpenCV); no bpy."""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pose_factory import imageio
from pose_factory.manifest import image_key
from pose_factory.mesh.props import PROP_LABEL_BASE
from pose_factory.render import passes

BG_DEPTH = 1e9  # Cycles writes ~1e10 for background


def progress(state, done, total, **extra):
    print("@@progress " + json.dumps({"state": state, "done": done, "total": total, **extra}), flush=True)


class Writer:
    """Writes encoded images under the work folder, recording each relative key. PNG encoding
    runs on a small thread pool (OpenCV releases the GIL), overlapping the next render."""

    def __init__(self, out):
        self.out, self.files = out, {}
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.pending = []

    def image(self, folder, view, frame, array):
        key = image_key(folder, view, frame)
        self.pending.append(self.pool.submit(imageio.write_png, os.path.join(self.out, key), array))
        self.files.setdefault((view, frame), {})[folder] = key

    def depth_f32(self, view, frame, depth, mask):
        """A shard's metric depth, for the merge to write its 8-bit depth (render.write_shard_depth)."""
        key = image_key(passes.DEPTH_F32, view, frame, "npz")
        path = os.path.join(self.out, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(passes.depth_f32_bytes(depth, mask))
        self.files.setdefault((view, frame), {})[passes.DEPTH_F32] = key

    def json(self, folder, view, frame, obj):
        key = image_key(folder, view, frame, "json")
        path = os.path.join(self.out, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            json.dump(obj, fh, separators=(",", ":"))
        self.files.setdefault((view, frame), {})[folder] = key

    def finish(self):
        for job in self.pending:
            job.result()  # re-raises a failed write
        self.pool.shutdown()


def write_data_passes(writer, wanted, v, f, cam, depth, normal_w, index, rgba, mask, depths, shaded_samples):
    """The image passes of one rendered view (all but openpose and keypoints): the mannequin's and
    any mesh's alike. The 8-bit depth waits in ``depths`` for its range (finish_depth)."""
    if "depth16" in wanted:
        writer.image("depth16", v, f, passes.depth_to_mm16(depth, mask))
    if "depth" in wanted:
        depths[(v, f)] = (depth.astype(np.float32), mask)
    if "normal" in wanted:
        n_cam = passes.world_to_camera_normals(normal_w, cam["rotation"])
        for conv in passes.NORMAL_CONVENTIONS:
            writer.image(passes.NORMAL_DIRS[conv], v, f, passes.normals_to_rgb(n_cam, mask, conv))
    if "shaded" in wanted and shaded_samples == 1:
        writer.image("shaded", v, f, passes.shaded_from_combined(rgba, index))
    if "seg" in wanted:
        writer.image("seg", v, f, passes.seg_image(mask & (index < PROP_LABEL_BASE)))  # a prop is no person
        writer.image("mask", v, f, passes.mask_image(mask))
        writer.image("parts", v, f, index)


def finish_depth(writer, depths, depth_range, deferred):
    """The 8-bit depth of every rendered view: one range for the whole batch (no flicker across
    views and frames) unless per image, from the rendered metric depth, so that no subject pixel is
    clipped. A shard of a batch-range batch (deferred) cannot know the other shards' depth: it
    keeps its metric depth, and the merge writes the 8-bit depth with the shards' ranges merged
    (render.write_shard_depth). Returns the batch's range."""
    ranges = {k: passes.depth_range(d, m) for k, (d, m) in depths.items()}
    batch_range = passes.merge_ranges(ranges.values())
    for (v, f), (d, m) in depths.items():
        if deferred:
            writer.depth_f32(v, f, d, m)
        else:
            near, far = (batch_range if depth_range == "batch" else ranges[(v, f)]) or (0.0, 1.0)
            writer.image("depth", v, f, passes.depth_to_u8(d, m, near, far))
    return batch_range
