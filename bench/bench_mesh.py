"""Images → mesh figures (issue 14): the mannequin rendered from the 8 canonical views (and 4),
reconstructed by the visual hull at 128³ and 256³ voxels — carving plus marching cubes, timed —
then decimated (fast-simplification) to several face counts, each with its voxel IoU against the
mannequin itself (pose_factory.mesh.metrics, 1 cm voxels).

    .venv/bin/python bench/bench_mesh.py [--size 384] [--resolutions 128,256] [--faces 50000,20000,10000,5000,2000]
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import loading, render  # noqa: E402
from pose_factory.mesh import hull, metrics, postprocess, views  # noqa: E402
from pose_factory.storage import LocalStorage, batch_prefix  # noqa: E402

PITCH = 0.01


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=384, help="view images, pixels a side")
    ap.add_argument("--resolutions", default="128,256")
    ap.add_argument("--faces", default="50000,20000,10000,5000,2000")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    resolutions = [int(x) for x in a.resolutions.split(",")]
    targets = [int(x) for x in a.faces.split(",")]
    with tempfile.TemporaryDirectory(prefix="pose_factory_bench_mesh_") as tmp:
        storage = LocalStorage(tmp)
        truth = None
        for n in (8, 4):
            spec = {"render": {"width": a.size, "height": a.size, "passes": ["seg"]}, "cameras": views.rig(n),
                    "subjects": [{"poses": ["a_pose"]}]}
            m, _ = render.render_batch(spec, storage, project="bench")
            folder = storage.local_path(batch_prefix("bench", m["batch_id"]))
            masks = loading._decode(folder, m, loading.select_entries(m), "mask", "gray") > 127
            truth = truth or metrics.mannequin_occupancy(m["spec"]["subjects"][0]["poses"][0], PITCH)
            print(f"\n{n} canonical views of the mannequin at {a.size}x{a.size} px")
            print(f"{'voxels':>8} {'reconstruct s (median of %d)' % a.repeat:>30} {'faces':>8} {'IoU':>6}")
            for res in resolutions:
                times = []
                for _ in range(a.repeat):
                    t0 = time.perf_counter()
                    v, f, _info = hull.VisualHull().reconstruct(None, masks, m["views"], resolution=res)
                    times.append(time.perf_counter() - t0)
                iou = metrics.iou(metrics.occupancy(v, f, PITCH), truth)
                print(f"{res:>7}³ {statistics.median(times):>30.3f} {len(f):>8} {iou:>6.3f}")
                if n == 8 and res == resolutions[-1]:
                    full = (v, f)
        print(f"\ndecimation of the 8-view {resolutions[-1]}³ hull (fast-simplification), IoU with the mannequin")
        print(f"{'target':>8} {'faces':>8} {'IoU':>6} {'decimate s':>11}")
        v, f = full
        for target in targets:
            t0 = time.perf_counter()
            dv, df = postprocess.decimate(v, f, target)
            dt = time.perf_counter() - t0
            print(f"{target:>8} {len(df):>8} {metrics.iou(metrics.occupancy(dv, df, PITCH), truth):>6.3f} {dt:>11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
