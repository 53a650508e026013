"""Motion figures (issue 13): a 48-frame walk (Pose Sequence: slerped in-betweens, walking 3 m)
from 2 views at 512x512, every pass, rendered in ONE Blender process for every (view, frame).
Prints the clip's frames per second of wall time, images per second, and Blender's start-up
(paid once per batch) against the whole batch. The child process is counted: one per batch.

    .venv/bin/python bench/bench_motion.py [--size 512] [--frames 48] [--views 2] [--follow]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nodes.spec_nodes import parse_sequence  # noqa: E402
from pose_factory import render  # noqa: E402


def walk(frames: int) -> list:
    """A walk of exactly `frames` frames: steps of 6 frames, then its closing key."""
    steps, rest = divmod(frames - 1, 6)
    lines = [f"{'walk_left_step' if i % 2 == 0 else 'walk_right_step'} frames={6 + (1 if i < rest else 0)}"
             for i in range(steps)]
    lines.append("walk_left_step" if steps % 2 == 0 else "walk_right_step")
    poses = parse_sequence("\n".join(lines), "walk_forward", 3.0)
    assert len(poses) == frames, len(poses)
    return poses


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--follow", action="store_true", help="a rig that follows the root")
    a = ap.parse_args(argv)
    spec = {"render": {"width": a.size, "height": a.size},
            "cameras": {"views": a.views, "start_azimuth": 30, **({"follow": True} if a.follow else {})},
            "subjects": [{"poses": walk(a.frames)}]}
    spec = render.spec_mod.normalize_spec(spec)
    started = []
    real_popen = subprocess.Popen

    def counting_popen(cmd, *args, **kwargs):  # every Blender child this batch starts
        started.append(cmd)
        return real_popen(cmd, *args, **kwargs)

    subprocess.Popen = counting_popen
    try:
        with tempfile.TemporaryDirectory() as work:
            t0 = time.perf_counter()
            result = render.run_blender(spec, work)
            wall = time.perf_counter() - t0
    finally:
        subprocess.Popen = real_popen
    t = result["timings"]
    images = len(result["entries"])
    print(f"motion batch: {a.frames} frames x {a.views} views at {a.size}x{a.size}, every pass"
          f"{', following rig' if a.follow else ''} ({images} images)")
    print(f"  Blender processes started      {len(started)}")
    print(f"  start-up (once per batch)      {t['startup']:7.2f} s   ({100 * t['startup'] / wall:.1f} % of the batch)")
    print(f"  render loop (every view, frame){t['render_loop']:7.2f} s")
    print(f"  whole batch (wall)             {wall:7.2f} s")
    print(f"  clip frames per second         {a.frames / wall:7.2f}   ({a.views} views each)")
    print(f"  images per second              {images / wall:7.2f}   (start-up excluded: "
          f"{images / (wall - t['startup']):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
