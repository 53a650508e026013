"""Reconstruction backends, chosen by name. A backend is a class with ``name``, ``needs`` (what of
the view set it uses: "images", "masks", "cameras") and

    reconstruct(images, masks, cameras, *, resolution, report) -> (vertices (N, 3) Z-up,
                                                                  faces (M, 3), info dict)

images: uint8 (H, W, 3) per view; masks: bool (H, W); cameras: resolved camera dicts
(pose_factory.render.cameras, as a manifest lists them); report(done, total) for progress.

Shipped: 'visual_hull' (pose_factory/mesh/hull.py; no weights). A learned backend (TripoSR,
TRELLIS, Hunyuan3D…) plugs in without changing the job's contract, in either of two ways:
  - a package that declares an entry point in the group ``pose_factory.mesh_backends``
    (``name = "module:Class"``) and is installed in the worker environment, or
  - a line in BUILTIN below, for a backend kept in this repository.
Its weights come with its package (or its own download step at image build time), never at job time.
"""
from __future__ import annotations

import importlib
from importlib import metadata

from ..errors import SpecError

ENTRY_POINT_GROUP = "pose_factory.mesh_backends"
BUILTIN = {"visual_hull": "pose_factory.mesh.hull:VisualHull"}


def _registered() -> dict:
    found = dict(BUILTIN)
    try:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(ep.name, ep.value)
    except Exception:  # a broken distribution's metadata must not hide the built-in backends
        pass
    return found


def _load(target: str):
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def installed() -> list[str]:
    """Names of the backends whose code imports here, sorted."""
    names = []
    for name, target in _registered().items():
        try:
            _load(target)
        except Exception:
            continue
        names.append(name)
    return sorted(names)


def get(name):
    """An instance of the backend ``name``; SpecError listing the installed ones otherwise."""
    target = _registered().get(name) if isinstance(name, str) else None
    if target is not None:
        try:
            return _load(target)()
        except ImportError as e:
            raise SpecError("backend", f"{name!r} is registered but cannot be imported ({e})",
                            "one of the installed backends: " + ", ".join(installed())) from None
    raise SpecError("backend", f"unknown backend {name!r}", "one of the installed backends: " + ", ".join(installed()))
