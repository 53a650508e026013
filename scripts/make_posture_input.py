"""Makes pod_worker/test_posture_input.json, the posture request scripts/build_image_local.sh sends
to the handler inside the image: a front and a side photo of the mannequin (our own shaded renders,
nothing downloaded) as base64 JPEG, in the posture API's {"front", "side"} form (DESIGN.md §7).
Before writing, it checks the request in the worker's own path (MediaPipe's real model): an input
the model finds no person in would test nothing.

    .venv/bin/python scripts/make_posture_input.py [--size 384] [--out pod_worker/test_posture_input.json]
"""
import argparse
import asyncio
import base64
import io
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from PIL import Image  # noqa: E402

from pose_factory import imageio, render, storage as storage_mod  # noqa: E402
from pose_factory.extract.posture import FRONT_ANGLES, SIDE_ANGLES  # noqa: E402

# The request travels as one command-line argument (`handler.py --test_input "$(cat FILE)"`), which
# Linux caps at 128 KiB (MAX_ARG_STRLEN).
MAX_BYTES = 128 * 1024


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=384, help="image width and height in pixels")
    ap.add_argument("--out", default=str(ROOT / "pod_worker" / "test_posture_input.json"))
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="posture_input_") as tmp:
        store = storage_mod.LocalStorage(tmp)
        spec = {"schema_version": "1.0", "kind": "pose_batch", "project": "posture-input",
                "render": {"width": a.size, "height": a.size, "passes": ["shaded"]},
                # four views from azimuth 0: view 0 faces the mannequin, view 1 is its side (90°)
                "cameras": {"type": "orbit", "views": 4, "elevation": 0, "start_azimuth": 0},
                "subjects": [{"type": "mannequin", "poses": ["standing"]}]}
        manifest, _ = render.render_batch(spec, store)
        folder = Path(tmp) / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])

        def jpeg_b64(view):
            e = next(e for e in manifest["entries"] if e["view"] == view)
            buf = io.BytesIO()
            Image.fromarray(imageio.read_png(str(folder / e["files"]["shaded"]["key"]))[..., :3]).save(
                buf, "JPEG", quality=90)
            return base64.b64encode(buf.getvalue()).decode()

        request = {"input": {"front": jpeg_b64(0), "side": jpeg_b64(1)}}

    from pod_worker.request import execute
    answer = asyncio.run(execute(request["input"], lambda e: None))
    data = answer.get("data", {})
    if (answer.get("status") != "success" or set(data.get("front_view", {})) != set(FRONT_ANGLES)
            or set(data.get("side_view", {})) != set(SIDE_ANGLES)):
        sys.exit(f"make_posture_input: the worker's answer on these renders is not a success with the "
                 f"8 angles: {json.dumps(answer)[:400]}")
    text = json.dumps(request)
    if len(text) > MAX_BYTES:
        sys.exit(f"make_posture_input: {len(text)} bytes is over the {MAX_BYTES} a command-line argument "
                 f"may hold; use a smaller --size")
    Path(a.out).write_text(text + "\n")
    print(f"make_posture_input: wrote {a.out} ({len(text) / 1024:.0f} KiB, {a.size}x{a.size} JPEGs); "
          f"answer here: {json.dumps(answer['data'])}")


if __name__ == "__main__":
    main()
