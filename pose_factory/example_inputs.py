"""The example inputs the templates load (example_workflows/input/): the photos (made by
scripts/make_example_photos.py: renders of our own mannequin) and the mannequin as a rigged GLB with
Mixamo bone names in the 3d/ subfolder (made by `make rig-template`: blender_scripts/make_rig.py),
put into ComfyUI's input folder so "Photo to pose" and the custom-rig template run on their first
click. The pack does it when ComfyUI loads it (nodes/extract_nodes.py), before the page asks for
Load Image's file list. A name may hold a subfolder (3d/...), created as needed.

    install(input_dir) -> {"copied": [...], "kept": [...], "failed": ["name: why", ...]}

Never overwrites: a file of that name already in the input folder is kept as it is (a user's own,
or ours from an earlier start), even when its bytes differ. A copy goes to a temporary name in the
input folder first and is then linked to its name (which fails if the name exists meanwhile), so a
half-written photo never carries the name. Writes nothing when the input folder lies inside the
pack's folder, and never raises for a folder that cannot be written (read-only, missing, a full
disk): ``failed`` says why.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = PACK_ROOT / "example_workflows" / "input"
PHOTO = "pose_factory_photo.png"                    # Extract Pose, Pose From Photo
POSTURE_FRONT = "pose_factory_posture_front.png"    # Posture Analysis: front
POSTURE_SIDE = "pose_factory_posture_side.png"      # ... and side
PHOTOS = (PHOTO, POSTURE_FRONT, POSTURE_SIDE)
RIG = "3d/pose_factory_mannequin_rig.glb"           # the custom-rig template (docs/rigs.md)
FILES = (*PHOTOS, RIG)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _copy_new(src: Path, dst: Path) -> bool:
    """src to dst unless dst exists (False); FileExistsError never escapes, other OSErrors do."""
    if os.path.lexists(dst):
        return False
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        shutil.copyfile(src, tmp)
        try:
            os.link(tmp, dst)  # fails if dst exists: never overwrites
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system: an exclusive create instead
            try:
                with open(dst, "xb") as out, open(tmp, "rb") as inp:
                    shutil.copyfileobj(inp, out)
            except FileExistsError:
                return False
        return True
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass


def install(input_dir, files=FILES, source_dir: Path = SOURCE_DIR) -> dict:
    """Copies each of files from source_dir into input_dir unless a file of that name is there."""
    report = {"copied": [], "kept": [], "failed": []}
    target = Path(input_dir)
    if _inside(target, PACK_ROOT):
        report["failed"] = [f"{name}: the input folder {target} is inside the pack's folder; nothing is written "
                            "there" for name in files]
        return report
    for name in files:
        try:
            target.mkdir(parents=True, exist_ok=True)
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (report["copied"] if _copy_new(source_dir / name, target / name) else report["kept"]).append(name)
        except OSError as e:
            report["failed"].append(f"{name}: {e.strerror or e} ({target})")
    return report
