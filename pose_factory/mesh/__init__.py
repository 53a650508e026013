"""Meshes: images → mesh (the reconstruct job and its backends), post-processing and exports, and
the exact passes of any mesh (DESIGN.md §7 "Asset pipeline"). Imports numpy only; scikit-image,
trimesh, fast-simplification and xatlas (worker environment) are imported where they are used."""
