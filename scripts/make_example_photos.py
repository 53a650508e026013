"""Makes the example photos the "Photo to pose" template loads (example_workflows/input/; the pack
copies them into ComfyUI's input folder when it loads: pose_factory/example_inputs.py): shaded
renders of our own mannequin (nothing downloaded, ours to ship), a person MediaPipe finds.

    pose_factory_photo.png            a waving figure, a little turned: Extract Pose, Pose From Photo
    pose_factory_posture_front.png    a standing figure from the front, shoulders a little tilted,
    pose_factory_posture_side.png     ... and from its side, head forward: Posture Analysis

Before writing, each is checked in the worker's own path (MediaPipe's real model): a person found
on the photo, and the posture request on the front and side answered with its 8 angles.

    .venv/bin/python scripts/make_example_photos.py [--out example_workflows/input]
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

from pose_factory import example_inputs, imageio, render, storage as storage_mod  # noqa: E402

W, H = 384, 512
PHOTO_POSE = "waving"
POSTURE_POSE = {"preset": "standing", "joints": {"chest": {"side": 4}, "neck": {"flex": 12}}}


def shaded(store, tmp, poses, cameras) -> list:
    spec = {"schema_version": "1.0", "kind": "pose_batch", "project": "example-photos",
            "render": {"width": W, "height": H, "passes": ["shaded"]}, "cameras": cameras,
            "subjects": [{"type": "mannequin", "poses": poses}]}
    manifest, _ = render.render_batch(spec, store)
    folder = Path(tmp) / storage_mod.batch_prefix(manifest["project"], manifest["batch_id"])
    return [imageio.read_png(str(folder / e["files"]["shaded"]["key"]))[..., :3] for e in manifest["entries"]]


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(example_inputs.SOURCE_DIR))
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="example_photos_") as tmp:
        store = storage_mod.LocalStorage(tmp)
        (photo,) = shaded(store, tmp, [PHOTO_POSE], {"type": "list", "cameras": [
            {"location": [0.9, -2.9, 1.15], "look_at": [0, 0, 0.9], "focal_length": 50.0}]})
        front, side = shaded(store, tmp, [POSTURE_POSE], {"type": "list", "cameras": [
            {"location": [0, -3.2, 1.0], "look_at": [0, 0, 0.9], "focal_length": 50.0},
            {"location": [3.2, 0, 1.0], "look_at": [0, 0, 0.9], "focal_length": 50.0}]})
    files = {example_inputs.PHOTO: png(photo), example_inputs.POSTURE_FRONT: png(front),
             example_inputs.POSTURE_SIDE: png(side)}

    from pod_worker.request import execute
    b64 = {k: base64.b64encode(v).decode() for k, v in files.items()}
    found = asyncio.run(execute({"extract": {"images": [b64[example_inputs.PHOTO]]}}, lambda e: None))
    if found.get("found") != [True]:
        sys.exit(f"make_example_photos: MediaPipe finds nobody on the photo: {json.dumps(found)[:300]}")
    answer = asyncio.run(execute({"front": b64[example_inputs.POSTURE_FRONT], "side": b64[example_inputs.POSTURE_SIDE]},
                                 lambda e: None))
    if answer.get("status") != "success":
        sys.exit(f"make_example_photos: the posture request on the front and side fails: {json.dumps(answer)[:300]}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
        print(f"make_example_photos: wrote {out / name} ({len(data) / 1024:.0f} KiB)")
    print(f"posture here: {json.dumps(answer['data'])}")


if __name__ == "__main__":
    main()
