"""Extract Pose's visibility cut, measured (issue 23; docs/extraction.md, "The visibility cut"):
our own shaded renders with exact keypoints (real bpy), MediaPipe on each, and for several cuts
PCK@0.2 (the truly visible body points reported within 0.2 × torso size of the truth; a dropped
point is a miss) and the false-positive rate (reported points that the truth has hidden by the
body or another person, or outside the frame, per reported point).

The images (sets()): presets from 8 orbit views (front, three-quarter, both profiles, the back);
two people, one partly covering the other, from 4 sides; a box in front of the legs and one hand
(a prop), from 4 sides.

    .venv/bin/python bench/bench_visibility_cut.py [--quick]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import imageio, render, storage as storage_mod  # noqa: E402
from pose_factory.extract.validation import cut_counts, cut_table, person_torsos  # noqa: E402

CUTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)
PRESETS = ["standing", "walk_left_step", "sitting", "waving", "arms_crossed", "reaching_forward", "kneeling",
           "hands_on_hips"]
PAIR = [{"type": "mannequin", "poses": ["walk_left_step", "waving", "standing"], "place": {"position": [0.25, -0.1]}},
        {"type": "mannequin", "build": "slim", "height": 1.85, "poses": ["standing", "a_pose", "arms_crossed"],
         "place": {"position": [-0.1, 0.7], "facing": 15}}]


BOX = (0.7, 0.85, 0.12)  # the prop: a board, glTF x, y (up), z; in front of the legs, its top at a hand's height
BOX_AT = [0.1, -0.45, 0.45]


def sets(quick: bool) -> dict:
    """name → (subjects, cameras, props) of each rendered set."""
    presets = PRESETS[:3] if quick else PRESETS
    pair = [dict(s, poses=s["poses"][:2] if quick else s["poses"]) for s in PAIR]
    return {"views": ([{"type": "mannequin", "poses": presets}],
                      {"type": "orbit", "views": 4 if quick else 8, "elevation": 10, "start_azimuth": 0}, []),
            "pair": (pair, {"type": "orbit", "views": 2 if quick else 4, "elevation": 5, "start_azimuth": 0}, []),
            "prop": ([{"type": "mannequin", "poses": ["standing", "waving"] if quick else ["standing", "waving",
                                                                                          "walk_left_step"]}],
                     {"type": "orbit", "views": 2 if quick else 4, "elevation": 10, "start_azimuth": 0},
                     [{"mesh": "box", "location": BOX_AT}])}


def render_sets(root, quick: bool = False, size: int = 512) -> dict:
    """name → [(shaded RGB, keypoints frame, torsos), ...] rendered into storage under root (the
    prop's mesh, made with trimesh, too)."""
    from pose_factory.mesh import props as props_mod

    store = storage_mod.LocalStorage(root)
    out = {}
    for name, (subjects, cams, props) in sets(quick).items():
        spec = {"schema_version": "1.0", "kind": "pose_batch", "project": "visibility-cut",
                "render": {"width": size, "height": size, "passes": ["keypoints", "shaded"]}, "cameras": cams,
                "subjects": subjects}
        if props:
            import trimesh

            box = Path(root) / "box.glb"
            trimesh.creation.box(extents=BOX).export(box)
            spec = props_mod.resolve(dict(spec, props=[dict(p, mesh=str(box)) for p in props]), store,
                                     spec["project"])
        manifest, _ = render.render_batch(spec, store)
        folder = Path(root) / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
        out[name] = [(imageio.read_png(str(folder / e["files"]["shaded"]["key"])),
                      json.loads((folder / e["files"]["keypoints"]["key"]).read_text()),
                      person_torsos(manifest, e["view"], e["frame"]))
                     for e in manifest["entries"]]
    return out


def measure(images: dict, detector, cuts=CUTS) -> dict:
    """name → summed cut_counts, plus "all"."""
    counts = {name: sum(cut_counts(detector.detect(img), kp, torsos, cuts) for img, kp, torsos in items)
              for name, items in images.items()}
    counts["all"] = sum(counts.values())
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the tests' small set")
    args = ap.parse_args(argv)
    from pose_factory.extract.detector import Detector

    with tempfile.TemporaryDirectory(prefix="pf-viscut-") as root:
        t = time.perf_counter()
        images = render_sets(root, args.quick)
        print(f"rendered {sum(len(v) for v in images.values())} images in {time.perf_counter() - t:.0f} s")
        det = Detector()
        counts = measure(images, det)
        det.close()
    for name, c in counts.items():
        print(f"\n{name}: {len(images.get(name, [])) or sum(len(v) for v in images.values())} images")
        print("| cut | PCK@0.2 | false positives / reported | visible | reported | hits − false positives |")
        print("|---|---|---|---|---|---|")
        for r in cut_table(c, CUTS):
            print(f"| {r['cut']:g} | {r['pck@0.2']:.3f} | {r['fp_rate']:.3f} | {r['visible']} | {r['reported']} "
                  f"| {r['net']} |")


if __name__ == "__main__":
    main()
