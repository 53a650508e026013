"""How close a reconstructed mesh is to a known shape: voxel occupancy by trimesh's voxelizer
(surface voxels, then filled) on a grid of the given pitch, and the IoU of two occupancies. The
mannequin's own occupancy is the union of its parts (each closed, they overlap)."""
from __future__ import annotations

import numpy as np


def occupancy(vertices, faces, pitch: float) -> set:
    """The (i, j, k) voxel indices (world / pitch, rounded) a closed mesh fills."""
    import trimesh

    vg = trimesh.Trimesh(vertices, faces, process=False).voxelized(pitch).fill()
    return set(map(tuple, np.rint(vg.points / pitch).astype(int)))


def iou(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


def mannequin_occupancy(pose_entry, pitch: float, height: float = 1.75, build: str = "average") -> set:
    """The posed mannequin's occupancy: the union of its parts'."""
    from ..render import mannequin as mq
    from ..render import poses

    body = mq.build(height, build)
    verts = mq.posed_vertices(body, poses.pose_body(body, pose_entry))
    occ, base = set(), 0
    for part in body.parts:
        occ |= occupancy(verts[base:base + len(part.verts)], part.triangles()[0], pitch)
        base += len(part.verts)
    return occ
