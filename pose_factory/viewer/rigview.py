"""A user's rig in the 3D viewer: its mesh posed per vertex from the core's numbers, no Blender in the
browser and none per pose.

Blender reads the file once, in a worker-environment child with a time limit (blender_scripts/
rig_view.py, as pose_factory.rigs.inspect_file checks a rig): the measured rest (retarget.RigRest),
the bones the map found, the eyes' points and the triangles. Then everything is numpy here:
``retarget.Retarget`` poses the bones with our forward kinematics (what the worker's RigPerson sets
in Blender), the pose is placed as a person is (``poses.placed``) and grounded (its lowest vertex on
the floor), and each vertex moves rigidly with its dominant bone (``v' = W_b R_b^-1 v``; the worker
blends the bones' weights, so near a joint a vertex here may differ from the render by millimetres).
The browser gets the rest mesh once (``mesh(key)``) and per pose one 3x4 matrix per bone.

Loaded rigs are kept in memory (the last few) under a key of the file's content, bone map and height.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import threading
from collections import OrderedDict

import numpy as np

from .. import rigs
from ..errors import SpecError
from ..render import poses as poses_mod
from ..render import rig
from ..rigs.retarget import Retarget, RigRest

MAX_RIGS = 4
_loaded: OrderedDict = OrderedDict()
_lock = threading.Lock()


class RigView:
    """A loaded rig ready to pose (numpy only)."""

    def __init__(self, key: str, data: dict, bone_map, height):
        self.key = key
        self.rest = RigRest.from_json(data["rest"])
        self.rt = Retarget(self.rest, data["found"], height)
        self.rt.set_eye_points({k: np.asarray(v, float) for k, v in data.get("eye_points", {}).items()})
        owner = self.rest.vertex_bone.copy()
        lost = owner < 0  # no weight: the nearest bone's head (as the worker's RigPerson)
        if lost.any():
            heads = self.rest.matrices[:, :3, 3]
            owner[lost] = np.linalg.norm(self.rest.vertices[lost, None] - heads[None], axis=2).argmin(1)
        self.owner = owner
        self.faces = np.asarray(data.get("faces", []), int).reshape(-1, 3)
        self.inv_rest = np.linalg.inv(self.rest.matrices)

    def posed(self, entry, place) -> np.ndarray:
        """(B, 4, 4) world bone matrices of a normalized pose entry, placed and grounded."""
        mats, grounded = self.rt.pose(entry)
        at = poses_mod.placed(rig.Posed(mats[:, :3, 3], mats[:, :3, :3]), place)
        world = mats.copy()
        world[:, :3, :3], world[:, :3, 3] = at.rotations, at.positions
        if grounded:
            world[:, 2, 3] -= self.vertices(world)[:, 2].min()
        return world

    def skin(self, world: np.ndarray) -> np.ndarray:
        """(B, 4, 4): each bone's rest-to-posed transform (what moves its vertices)."""
        return world @ self.inv_rest

    def vertices(self, world: np.ndarray) -> np.ndarray:
        s = self.skin(world)[self.owner]
        return np.einsum("nij,nj->ni", s[:, :3, :3], self.rest.vertices) + s[:, :3, 3]

    def keypoints(self, world: np.ndarray) -> np.ndarray:
        return self.rt.keypoints(world)

    def mesh(self) -> dict:
        """The rest mesh for the browser: vertices (its file's world), triangles, each vertex's bone."""
        return {"key": self.key, "bones": len(self.rest.names), "height": round(float(self.rt.height), 4),
                "vertices": np.round(self.rest.vertices, 5).ravel().tolist(),
                "vertex_bone": self.owner.astype(int).tolist(), "triangles": self.faces.ravel().tolist()}


def _read(path: str, fmt: str, bone_map, height, timeout: float, python: str | None) -> dict:
    """Blender reads the rig in a child (blender_scripts/rig_view.py) on a link in a temporary folder
    of its own (removed after): nothing is written beside the user's file."""
    from ..worker_process import REPO_ROOT, child_env, worker_python

    with tempfile.TemporaryDirectory(prefix="pose_factory_rigview_") as work:
        link = os.path.join(work, f"rig.{fmt}")
        os.symlink(os.path.abspath(path), link)
        out = os.path.join(work, "view.json")
        cmd = [python or worker_python(), "-m", "blender_scripts.rig_view", "--file", link, "--format", fmt,
               "--bone-map", json.dumps(bone_map), "--height", json.dumps(height), "--out", out]
        try:
            proc = subprocess.run(cmd, cwd=str(REPO_ROOT), env=child_env(os.path.join(work, "tmp")),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SpecError("rig", f"Blender's import took more than {timeout:g} s", "a rig Blender imports in time") \
                from None
        if proc.returncode != 0 or not os.path.isfile(out):
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            raise SpecError("rig", f"Blender could not import it ({tail[0][:200]})",
                            "a rigged humanoid " + ", ".join("." + f for f in rigs.RIG_FORMATS) + " file Blender reads")
        with open(out) as fh:
            data = json.load(fh)
    if "error" in data:
        raise SpecError(data.get("field", "rig"), data["error"], data.get("allowed", ""))
    return data


def load(subject: dict, python: str | None = None, timeout: float | None = None) -> RigView:
    """The RigView of a rig subject whose file is on this machine ({"rig": {"file": path}}, as the
    Custom Rig node makes it): read once (size cap and the format's bytes checked first), then kept.
    SpecError: a file that is not there or not a rig Blender reads; a stored rig (sha256), which only
    the worker fetches."""
    ref = subject.get("rig") or {}
    if "file" not in ref:
        raise SpecError("rig", "a stored rig (by its sha256)", "a rig file on this machine (stored rigs are drawn "
                                                               "in the batch's images after the render)")
    data, fmt = rigs.read_file(ref["file"], "rig")
    bone_map, height = subject.get("bone_map", "auto"), subject.get("height", "auto")
    key = hashlib.sha256(data + json.dumps([fmt, bone_map, height], sort_keys=True).encode()).hexdigest()[:24]
    del data
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    view = RigView(key, _read(ref["file"], fmt, bone_map, height,
                              timeout or rigs.IMPORT_TIMEOUT_S, python), bone_map, height)
    with _lock:
        _loaded[key] = view
        while len(_loaded) > MAX_RIGS:
            _loaded.popitem(last=False)
    return view


def loaded(key) -> RigView | None:
    """A rig loaded before (the browser asks for its mesh by the key the scene gave), or None."""
    with _lock:
        return _loaded.get(key) if isinstance(key, str) else None
