"""What a prop costs a pose batch (issue 14): the same batch (4 views x 3 poses at 512x512, every
pass) rendered without a prop and with one (a UV sphere GLB of --faces triangles beside the
subject, stored and placed by the job client's path), alternating, each a fresh batch (force),
so both figures come from one run on the same, equally busy machine. Prints the medians and
their ratio, for the whole render and for Blender's data passes alone.

    .venv/bin/python bench/bench_props.py [--repeat 3] [--faces 20000] [--size 512]
"""
import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import render  # noqa: E402
from pose_factory.mesh import props  # noqa: E402
from pose_factory.storage import LocalStorage  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--faces", type=int, default=20000)
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    import trimesh

    base = {"project": "bench", "render": {"width": a.size, "height": a.size},
            "cameras": {"type": "orbit", "views": 4, "elevation": 10},
            "subjects": [{"poses": ["a_pose", "walk_left_step", "waving"]}]}
    with tempfile.TemporaryDirectory(prefix="bench_props_") as tmp:
        n = max(4, round(math.sqrt(a.faces / 4)))  # a UV sphere of count (n, n) has about 4 n^2 faces
        sphere = trimesh.creation.uv_sphere(radius=0.3, count=[n, n])
        glb = Path(tmp) / "sphere.glb"
        sphere.export(glb)
        storage = LocalStorage(Path(tmp) / "store")
        with_prop = props.resolve(dict(base, props=[{"mesh": str(glb), "location": [0.6, -0.3, 0.5]}]), storage,
                                  "bench")
        runs = {"without": [], "with": []}
        for _ in range(a.repeat):
            for name, spec in (("without", base), ("with", with_prop)):
                t0 = time.perf_counter()
                manifest, _ = render.render_batch(spec, storage, force=True)
                wall = time.perf_counter() - t0
                runs[name].append((wall, manifest["timings"]["data_passes"]))
    images = 4 * 3
    print(f"pose batch, 4 views x 3 poses at {a.size}x{a.size}, every pass; prop: a UV sphere of "
          f"{len(sphere.faces)} faces; median of {a.repeat}, alternating")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(d for _, d in v)) for k, v in runs.items()}
    print(f"{'':24}{'without':>10}{'with prop':>12}{'ratio':>8}")
    for i, label in enumerate(("whole render (wall) s", "data passes s")):
        print(f"{label:24}{med['without'][i]:>10.2f}{med['with'][i]:>12.2f}{med['with'][i] / med['without'][i]:>8.2f}")
    print(f"{'per image (wall) s':24}{med['without'][0] / images:>10.3f}{med['with'][0] / images:>12.3f}")


if __name__ == "__main__":
    main()
