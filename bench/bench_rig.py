"""Users' rigs (issue 22): what a rig costs against the single mannequin, and how exactly it takes a pose.

1. Seconds per view: the same batch (4 views of one pose at 512x512, every pass) with the mannequin
   and with a 30k-triangle rig (the mannequin written as a Mixamo FBX by blender_scripts.make_rig,
   subdivided), rendered alternating as fresh batches (force); the rig's figure includes the
   worker's time-limited import check (one more Blender start). Medians.
2. Accuracy: rigs written by make_rig (Mixamo FBX/GLB, Rigify, VRM 0.x/1.0; A- and T-pose) re-imported
   through our path (tests/blender/user_rig_check.py), their keypoints against the mannequin's
   before export at 512x512 (4 cameras, 3 presets), and markers at Blender's posed bones.

    .venv/bin/python bench/bench_rig.py [--repeat 3] [--size 512] [--no-accuracy]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pose_factory import render, rigs  # noqa: E402
from pose_factory.storage import LocalStorage  # noqa: E402

VIEWS = 4
POSE = "walk_left_step"
CASES = {
    "mixamo FBX A-pose": {"make": {"file": "a.fbx", "naming": "mixamo", "rest": "a-pose"}, "markers": True},
    "mixamo FBX T-pose": {"make": {"file": "t.fbx", "naming": "mixamo", "rest": "t-pose"}},
    "mixamo1: GLB T-pose": {"make": {"file": "t.glb", "naming": "mixamo", "rest": "t-pose", "prefix": "mixamorig1:"}},
    "rigify DEF- FBX": {"make": {"file": "r.fbx", "naming": "rigify", "rest": "a-pose", "prefix": "DEF-"}},
    "VRM 0.x T-pose": {"make": {"file": "v0.vrm", "naming": "vrm0", "rest": "t-pose"}, "markers": True},
    "VRM 1.0 A-pose": {"make": {"file": "v1.vrm", "naming": "vrm1", "rest": "a-pose"}},
}
PRESETS = ["waving", "sitting", "fighting_stance"]


def timing(repeat: int, size: int):
    with tempfile.TemporaryDirectory(prefix="bench_rig_") as tmp:
        rig = Path(tmp) / "rig30k.fbx"
        subprocess.run([sys.executable, "-m", "blender_scripts.make_rig", "--out", str(rig), "--naming", "mixamo",
                        "--rest", "a-pose", "--triangles", "30000", "--no-sidecar"], check=True, cwd=ROOT,
                       capture_output=True)
        storage = LocalStorage(Path(tmp) / "store")
        t0 = time.perf_counter()
        report = rigs.inspect_file(str(rig))
        inspect_s = time.perf_counter() - t0
        subjects = {"mannequin": [{"poses": [POSE]}],
                    "rig (30k)": rigs.resolve({"subjects": [{"type": "rig", "rig": {"file": str(rig)}, "poses": [POSE]}]},
                                              storage, "bench")["subjects"]}
        runs = {k: [] for k in subjects}
        for _ in range(repeat):
            for name, subj in subjects.items():
                spec = {"project": "bench", "render": {"width": size, "height": size},
                        "cameras": {"type": "orbit", "views": VIEWS, "elevation": 10}, "subjects": subj}
                t0 = time.perf_counter()
                manifest, _ = render.render_batch(spec, storage, force=True)
                runs[name].append(((time.perf_counter() - t0) / VIEWS, manifest["timings"]["render_loop"] / VIEWS))
    print(f"pose batch, {VIEWS} views of one pose ({POSE}) at {size}x{size}, every pass; median of {repeat}, alternating")
    print(f"the rig: {report['triangles']} triangles; its import check alone (a Blender child): {inspect_s:.2f} s")
    base = None
    print(f"{'subject':>12}{'s/view (wall)':>16}{'x':>7}{'s/view (render loop)':>23}{'x':>7}")
    for name, v in runs.items():
        w, r = statistics.median(x for x, _ in v), statistics.median(y for _, y in v)
        base = base or (w, r)
        print(f"{name:>12}{w:>16.3f}{w / base[0]:>7.2f}{r:>23.3f}{r / base[1]:>7.2f}")


def accuracy():
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="bench_rig_acc_") as tmp:
        cases = Path(tmp) / "cases.json"
        cases.write_text(json.dumps({k: dict(v, presets=PRESETS) for k, v in CASES.items()}))
        subprocess.run([sys.executable, str(ROOT / "tests" / "blender" / "user_rig_check.py"), tmp, str(cases)],
                       check=True, cwd=ROOT, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        r = json.loads((Path(tmp) / "results.json").read_text())
    print("\nre-imported rigs against the mannequin before export, 512x512, 4 cameras x 3 presets (px):")
    print(f"{'rig':>22}{'rest':>10}{'max':>8}{'mean':>8}{'markers max':>13}")
    px = {}
    for name, c in r.items():
        e = np.concatenate([np.linalg.norm(np.array(p["px"]) - np.array(p["px_mannequin"]), axis=-1).ravel()
                            for p in c["presets"].values()])
        px[name] = {k: np.array(p["px"]) for k, p in c["presets"].items()}
        m = c.get("markers")
        mk = f"{max(np.hypot(*np.subtract(x['found'], x['ours'])) for x in m):.3f}" if m else "-"
        print(f"{name:>22}{c['report']['rest']:>10}{e.max():>8.3f}{e.mean():>8.3f}{mk:>13}")
    a, t = px["mixamo FBX A-pose"], px["mixamo FBX T-pose"]
    print(f"A-pose vs T-pose rig, same presets: max {max(np.linalg.norm(a[k] - t[k], axis=-1).max() for k in a):.3f} px")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--no-accuracy", dest="accuracy", action="store_false")
    a = ap.parse_args()
    timing(a.repeat, a.size)
    if a.accuracy:
        accuracy()


if __name__ == "__main__":
    main()
