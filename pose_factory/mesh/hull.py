"""The visual-hull backend: the classical multi-view reconstruction that needs no model weights.
Voxels are carved by every view's silhouette (a voxel stays when its centre projects inside every
mask), coarse first to find the subject's box, then at the asked resolution; scikit-image's
marching cubes makes the surface and trimesh the mesh."""
from __future__ import annotations

import numpy as np

from ..render import cameras as cameras_mod
from ..errors import SpecError

COARSE = 48  # voxels along the longest side of the first, box-finding pass
CHUNK = 1 << 20  # voxel centres projected at once


def _focus(cams) -> np.ndarray:
    """The point nearest every camera's optical axis (least squares)."""
    a, b = np.zeros((3, 3)), np.zeros(3)
    for c in cams:
        d = -np.asarray(c["rotation"], float)[:, 2]
        p = np.eye(3) - np.outer(d, d)
        a += p
        b += p @ np.asarray(c["location"], float)
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _initial_box(cams) -> tuple[np.ndarray, np.ndarray]:
    """A cube around the focus that holds everything every camera sees near it."""
    centre = _focus(cams)
    half = 0.0
    for c in cams:
        k = c["intrinsics"]
        extent = max(k["width"], k["height"]) / k["fx"]
        if k["orthographic"]:
            half = max(half, extent / 2)
        else:
            depth = float((centre - np.asarray(c["location"])) @ -np.asarray(c["rotation"])[:, 2])
            half = max(half, depth * extent / 2)
    return centre - half, centre + half


def _grid(lo, hi, resolution):
    size = float(np.max(hi - lo)) / resolution
    counts = np.maximum(np.ceil((hi - lo) / size).astype(int), 1)
    return size, counts


def carve(masks, cams, lo, hi, resolution: int, report=None) -> tuple[np.ndarray, float]:
    """Occupancy (nx, ny, nz) of voxels of side size inside [lo, hi]; (occupancy, size)."""
    size, counts = _grid(lo, hi, resolution)
    axes = [lo[i] + (np.arange(counts[i]) + 0.5) * size for i in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    keep = np.ones(len(centres), bool)
    for vi, (mask, cam) in enumerate(zip(masks, cams)):
        h, w = mask.shape
        idx = np.nonzero(keep)[0]
        for s in range(0, len(idx), CHUNK):
            part = idx[s:s + CHUNK]
            xy, depth = cameras_mod.project(cam, centres[part])
            x, y = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
            inside = (depth > 0) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
            hit = np.zeros(len(part), bool)
            hit[inside] = mask[y[inside], x[inside]]
            keep[part] = hit
        if report:
            report(vi + 1, len(masks))
    return keep.reshape(counts), size


def surface(occupancy: np.ndarray, lo, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes (scikit-image) of the occupancy at level 0.5, padded so the surface closes."""
    from skimage import measure

    if not occupancy.any():
        raise SpecError("masks", "the silhouettes share no volume (no voxel is inside every mask)",
                        "masks of one subject seen by cameras that match the views")
    grid = np.pad(occupancy.astype(np.float32), 1)
    verts, faces, _n, _v = measure.marching_cubes(grid, level=0.5, spacing=(size, size, size))
    verts = verts + np.asarray(lo, float) - size * 0.5  # padding shifted the grid by a voxel; centres at +size/2
    return verts, faces.astype(np.int64)


class VisualHull:
    """Backend 'visual_hull': silhouettes + calibrated cameras → a closed, watertight mesh."""

    name = "visual_hull"
    needs = ("masks", "cameras")

    def reconstruct(self, images, masks, cams, *, resolution: int = 128, report=None):
        import trimesh

        masks = [np.asarray(m, bool) for m in masks]
        lo, hi = _initial_box(cams)
        coarse, size = carve(masks, cams, lo, hi, COARSE)
        if not coarse.any():
            raise SpecError("masks", "the silhouettes share no volume (no voxel is inside every mask)",
                            "masks of one subject seen by cameras that match the views")
        occupied = np.argwhere(coarse)
        lo2 = lo + (occupied.min(0) - 1) * size
        hi2 = lo + (occupied.max(0) + 2) * size
        occupancy, fine = carve(masks, cams, lo2, hi2, resolution, report)
        verts, faces = surface(occupancy, lo2, fine)
        mesh = trimesh.Trimesh(verts, faces, process=True)
        mesh.fix_normals()  # outward winding, whatever marching cubes' axis order gave
        return np.asarray(mesh.vertices), np.asarray(mesh.faces, np.int64), {"voxels": int(occupancy.size),
                                                                                 "voxel_size": fine}
