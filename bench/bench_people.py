"""What several people cost a pose batch (issue 22): the same batch (4 views of one fixed pose at
512x512, every pass) with 1, 2 and 4 mannequins side by side on the floor, rendered alternating,
each a fresh batch (force), so every figure comes from one run on the same, equally busy machine.
Prints the medians: seconds per view for the whole render (wall, Blender's start included) and for
the loop over views alone, and each against 1 person.

    .venv/bin/python bench/bench_people.py [--repeat 3] [--size 512] [--people 1,2,4]
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_factory import render  # noqa: E402
from pose_factory.storage import LocalStorage  # noqa: E402

VIEWS = 4
POSE = "walk_left_step"


def people(n: int) -> list:
    """n mannequins in a row 0.9 m apart, centred, alternately turned (the first at the origin
    for n = 1: the single mannequin of every batch before issue 22)."""
    out = []
    for k in range(n):
        x = round((k - (n - 1) / 2) * 0.9, 4)
        place = {"position": [x, 0.4 * (k % 2)], "facing": 20.0 * (k % 3 - 1)}
        out.append({"poses": [POSE], **({"place": place} if n > 1 else {})})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--people", default="1,2,4", help="comma-separated counts of people")
    a = ap.parse_args()
    counts = [int(c) for c in a.people.split(",")]
    runs = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="bench_people_") as tmp:
        storage = LocalStorage(Path(tmp) / "store")
        for _ in range(a.repeat):
            for n in counts:
                spec = {"project": "bench", "render": {"width": a.size, "height": a.size},
                        "cameras": {"type": "orbit", "views": VIEWS, "elevation": 10}, "subjects": people(n)}
                t0 = time.perf_counter()
                manifest, _ = render.render_batch(spec, storage, force=True)
                wall = time.perf_counter() - t0
                runs[n].append((wall / VIEWS, manifest["timings"]["render_loop"] / VIEWS))
    print(f"pose batch, {VIEWS} views of one pose ({POSE}) at {a.size}x{a.size}, every pass; "
          f"median of {a.repeat}, alternating")
    med = {n: (statistics.median(w for w, _ in v), statistics.median(r for _, r in v)) for n, v in runs.items()}
    base = med[counts[0]]
    print(f"{'people':>8}{'s/view (wall)':>16}{'x':>7}{'s/view (render loop)':>23}{'x':>7}")
    for n in counts:
        w, r = med[n]
        print(f"{n:>8}{w:>16.3f}{w / base[0]:>7.2f}{r:>23.3f}{r / base[1]:>7.2f}")


if __name__ == "__main__":
    main()
