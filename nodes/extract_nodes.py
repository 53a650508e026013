"""MediaPipe nodes: Extract Pose, Pose From Photo and Posture Analysis. MediaPipe runs in the local worker (the
worker environment, its own process; DESIGN.md §2), never in ComfyUI's Python: these nodes send
the images to it as PNGs and draw what comes back with the renders' own drawing code."""
from __future__ import annotations

import base64
import io
import json

import numpy as np

from ._common import CATEGORY, get_settings, image_tensor, interrupt_check, log, send_message
from pose_factory import example_inputs
from pose_factory.render import openpose
from pose_factory.extract import posture as P
from pose_factory.extract.mapping import MIN_VISIBILITY, check_visibility_cut

CAT = f"{CATEGORY}/extract"
MEASURED = [("front_view", a) for a in P.FRONT_ANGLES] + [("side_view", a) for a in P.SIDE_ANGLES]
WHAT_TO_DO = ("load a photo of one person in Load Image, best the whole body in view (the pack's example: "
              f"{example_inputs.PHOTO} in ComfyUI's input folder)")
VISIBILITY_CUT = ("FLOAT", {"default": MIN_VISIBILITY, "min": 0.0, "max": 1.0, "step": 0.05,
                            "tooltip": "MediaPipe's visibility below which a body point is written as not found "
                                       "(kept with its score in the pack's own field of POSE_KEYPOINT); "
                                       f"{MIN_VISIBILITY:g} was measured best (docs/extraction.md)"})
POSTURE_TO_DO = {"front": "a photo of one person facing the camera (the whole body in view)",
                 "side": "a photo of one person in profile, seen from the side (the whole body in view)"}


def install_example_photos() -> None:
    """The pack's example photos and template rig (3d/) into ComfyUI's input folder, once (never
    overwriting a file of the same name): the templates name them, so they run on their first click. Runs when ComfyUI loads
    the pack, before the page lists Load Image's files; outside ComfyUI it does nothing. A folder
    that cannot be written is logged, never raised (importing the pack must never fail)."""
    try:
        import folder_paths
    except ImportError:
        return
    try:
        report = example_inputs.install(folder_paths.get_input_directory())
    except Exception as e:  # noqa: BLE001  importing the pack must never fail (DESIGN.md §2)
        log.warning("3D Pose Factory: could not put the example inputs into the input folder: %s", e)
        return
    if report["copied"]:
        log.info("3D Pose Factory: example inputs put into the input folder: %s", ", ".join(report["copied"]))
    for why in report["failed"]:
        log.warning("3D Pose Factory: example input not put into the input folder (a template needs it): %s", why)


install_example_photos()


def _check_size(image, what: str) -> None:
    """The posture API's image limits (DESIGN.md §7), in the node's words, before the worker is asked."""
    h, w = int(image.shape[0]), int(image.shape[1])
    if min(w, h) < P.MIN_SIDE:
        raise ValueError(f"{what} too small: {w}×{h}, need at least {P.MIN_SIDE}×{P.MIN_SIDE} (a larger photo, "
                         "or scale it up first)")
    if max(w, h) > P.MAX_SIDE or w * h > P.MAX_PIXELS:
        raise ValueError(f"{what} too large: {w}×{h}, at most {P.MAX_SIDE} a side and "
                         f"{P.MAX_PIXELS // 1_000_000} megapixels (scale it down first)")


def _image_name(i: int, n: int) -> str:
    return "image" if n == 1 else f"image {i + 1} of {n}"


def _png_b64(image) -> str:
    """One IMAGE (H, W, 3) float tensor in 0..1 → base64 PNG."""
    from PIL import Image

    arr = (np.clip(image.cpu().numpy(), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[..., :3]).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _refused_input(message: str) -> bool:
    """Whether the worker refused the request itself (its image, its fields), not its environment."""
    return message.startswith((P.VALIDATION_ERROR, P.DETECT_ERROR, "input."))


def _worker(job_input: dict) -> dict:
    from pose_factory.jobs.client import JobFailed, run_worker_job

    try:
        return run_worker_job(job_input, settings=get_settings(), check_cancel=interrupt_check())
    except JobFailed as e:
        if _refused_input(str(e)):  # what was sent is wrong: said as it is, no set-up hint
            raise ValueError(str(e)) from None
        raise RuntimeError(f"pose extraction runs in the local worker (the worker environment with "
                           f"mediapipe 0.10.21, config worker_python): {e}") from None


class PoseFactoryExtractPose:
    DESCRIPTION = ("Finds the person in each image with MediaPipe's pose model (offline, in the local worker) and "
                   "returns the OpenPose skeleton drawn exactly like this pack's renders, plus POSE_KEYPOINT. "
                   "visibility_cut: a body point MediaPipe is less sure it sees is written as not found (kept with "
                   "its score in the pack's own field). "
                   "hands: MediaPipe's hand model too. face: OpenPose's 70 face points (68 + the pupils) from "
                   "MediaPipe's face mesh, drawn as white dots. When no image has a person the node stops with "
                   "an error saying so; in a batch where some have, those without get a black skeleton, a frame "
                   "with no people, a warning on the page and a line in info.")
    CATEGORY = CAT
    FUNCTION = "extract"
    RETURN_TYPES = ("IMAGE", "POSE_KEYPOINT", "STRING")
    RETURN_NAMES = ("skeleton", "pose_keypoint", "info")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "hands": ("BOOLEAN", {"default": False}),
                             "sdxl_sticks": ("BOOLEAN", {"default": False})},
                "optional": {"face": ("BOOLEAN", {"default": False,
                                                  "tooltip": "OpenPose's 70 face points from MediaPipe's face mesh"}),
                             "visibility_cut": VISIBILITY_CUT},
                "hidden": {"unique_id": "UNIQUE_ID"}}

    def extract(self, image, hands, sdxl_sticks, face=False, visibility_cut=MIN_VISIBILITY, unique_id=None):
        cut = check_visibility_cut(visibility_cut, "Extract Pose: visibility_cut")
        n = len(image)
        for i, im in enumerate(image):
            _check_size(im, _image_name(i, n))
        out = _worker({"extract": {"images": [_png_b64(im) for im in image], "hands": bool(hands), "face": bool(face),
                                   "visibility_cut": cut}})
        frames = out["frames"]
        missing = [i for i, found in enumerate(out["found"]) if not found]
        h, w = int(image.shape[1]), int(image.shape[2])
        if len(missing) == n:
            raise ValueError(f"Extract Pose: no person found in the {'image' if n == 1 else f'{n} images'} "
                             f"({w}×{h}, MediaPipe): {WHAT_TO_DO}")
        skel = np.stack([openpose.draw_pose(f, hands=bool(hands), face=bool(face), sdxl_sticks=bool(sdxl_sticks))
                         for f in frames])
        faces = sum(bool(p["face_keypoints_2d"]) for f in frames for p in f["people"])
        info = (f"MediaPipe backend: {out.get('backend')} ({out.get('model')}); person found in "
                f"{sum(out['found'])} of {len(frames)} images" + (f"; a face in {faces}" if face else "")
                + (f"; {out['note']}" if out.get("note") else ""))
        if missing:  # never a silent black image: said in info, in the log and on the page
            which = ", ".join(str(i + 1) for i in missing)
            warning = f"no person found in image{'s' if len(missing) > 1 else ''} {which} of {n}: black skeleton"
            info = f"{warning}\n{info}"
            log.warning("3D Pose Factory: Extract Pose: %s", warning)
            send_message("pose_factory.notice", {"node": unique_id, "severity": "warn", "title": "Extract Pose",
                                                 "text": warning})
        return image_tensor(skel), frames, info


class PoseFactoryPoseFromPhoto:
    DESCRIPTION = ("Turns the person in each photo into a mannequin pose (one frame per image) that plugs into Request "
                   "Pose Batch like a preset: MediaPipe's 3D world landmarks (in the local worker) fitted onto the "
                   "mannequin's joints within their limits, the photo's camera taken as the front view (azimuth 0). "
                   "info lists the fit's residual per bone in degrees. visibility_cut: image points MediaPipe is less sure "
                   "it sees weigh less in the fit.")
    CATEGORY = CAT
    FUNCTION = "make"
    RETURN_TYPES = ("POSE_FACTORY_POSES", "STRING")
    RETURN_NAMES = ("poses", "info")

    @classmethod
    def INPUT_TYPES(cls):
        cut = (VISIBILITY_CUT[0], dict(VISIBILITY_CUT[1], tooltip=(
            "MediaPipe's visibility below which an image point weighs little in the fit (0.3 of the others); "
            f"{MIN_VISIBILITY:g} as Extract Pose (docs/extraction.md)")))
        return {"required": {"image": ("IMAGE",)}, "optional": {"visibility_cut": cut}}

    def make(self, image, visibility_cut=MIN_VISIBILITY):
        from pose_factory.render import poses as poses_mod

        cut = check_visibility_cut(visibility_cut, "Pose From Photo: visibility_cut")
        n = len(image)
        for i, im in enumerate(image):
            _check_size(im, _image_name(i, n))
        out = _worker({"extract": {"images": [_png_b64(im) for im in image], "fit": True, "visibility_cut": cut}})
        missing = [i for i, f in enumerate(out["fits"]) if f is None]
        if missing:
            which = "the image" if n == 1 else f"image(s) {', '.join(str(i + 1) for i in missing)} of {n}"
            raise ValueError(f"Pose From Photo: no person found in {which} (MediaPipe, {out.get('backend')} "
                             f"backend): {WHAT_TO_DO}")
        entries, lines = [], []
        for i, fit in enumerate(out["fits"]):
            entries.append(poses_mod.normalize_pose_entry(fit["pose"], f"image {i}"))
            worst = sorted(fit["residual_deg"].items(), key=lambda kv: -kv[1])
            lines.append(f"image {i}: median residual {fit['median_deg']:.1f}°; per bone: "
                         + ", ".join(f"{k} {v:.1f}°" for k, v in worst))
        # the 3D viewer shows these poses after the run (pose_factory.viewer.remember)
        from pose_factory import viewer

        return {"ui": {"pose_factory_poses": [viewer.remember(entries)]}, "result": (entries, "\n".join(lines))}


def _annotate(image: np.ndarray, pts, view: str) -> np.ndarray:
    """The measured lines on a copy of the image: tilts in yellow, leans in cyan."""
    import cv2

    img = np.ascontiguousarray(image.copy())
    p = np.asarray(pts, float)

    def mid(a, b):
        return (p[a] + p[b]) / 2

    def line(a, b, colour):
        cv2.line(img, tuple(int(round(c)) for c in a), tuple(int(round(c)) for c in b), colour, 2, cv2.LINE_AA)

    thick = (255, 220, 0)
    if view == "front":
        for r, l in ((P.R_SH, P.L_SH), (P.R_HIP, P.L_HIP), (P.R_EAR, P.L_EAR)):
            line(p[r], p[l], thick)
        line(mid(P.R_HIP, P.L_HIP), mid(P.R_SH, P.L_SH), (0, 220, 255))
    else:
        chain = [mid(P.R_ANKLE, P.L_ANKLE), mid(P.R_KNEE, P.L_KNEE), mid(P.R_HIP, P.L_HIP),
                 mid(P.R_SH, P.L_SH), mid(P.R_EAR, P.L_EAR)]
        for a, b in zip(chain, chain[1:]):
            line(a, b, (0, 220, 255))
    return img


class PoseFactoryPostureAnalysis:
    DESCRIPTION = ("The posture API's angles (docs/posture.md) from a front and a side photo, measured by MediaPipe "
                   "in the local worker: the JSON answer, each angle in degrees, and a preview with the measured "
                   "lines drawn (front and side side by side).")
    CATEGORY = CAT
    FUNCTION = "analyse"
    RETURN_TYPES = ("STRING",) + ("FLOAT",) * len(MEASURED) + ("IMAGE",)
    RETURN_NAMES = ("json",) + tuple(f"{v.split('_')[0]}_{a}" for v, a in MEASURED) + ("preview",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"front_image": ("IMAGE",), "side_image": ("IMAGE",)}}

    def analyse(self, front_image, side_image):
        _check_size(front_image[0], "front image")
        _check_size(side_image[0], "side image")
        out = _worker({"front": _png_b64(front_image[0]), "side": _png_b64(side_image[0]), "points": True})
        if out.get("status") != "success":  # the reason in the message itself, and what to do about it
            message = out.get("message") or out.get("error") or "no message from the worker"
            view = next((v for v in ("front", "side") if f"the {v} image" in message or f" {v} image:" in message),
                        None)
            todo = f": load {POSTURE_TO_DO[view]} into the {view} Load Image" if view else ""
            raise ValueError(f"Posture Analysis: {message}{todo}")
        pics = []
        for view, t in (("front", front_image[0]), ("side", side_image[0])):
            arr = (np.clip(t.cpu().numpy(), 0, 1) * 255 + 0.5).astype(np.uint8)
            pics.append(_annotate(arr, out["points"][f"{view}_view"], view))
        h = max(p.shape[0] for p in pics)
        pics = [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0))) for p in pics]
        answer = {k: out[k] for k in ("status", "data", "message")}
        angles = tuple(float(out["data"][v][a]) for v, a in MEASURED)
        return (json.dumps(answer, indent=2),) + angles + (image_tensor(np.concatenate(pics, axis=1)[None]),)


NODE_CLASS_MAPPINGS = {"PoseFactoryExtractPose": PoseFactoryExtractPose, "PoseFactoryPoseFromPhoto": PoseFactoryPoseFromPhoto,
                       "PoseFactoryPostureAnalysis": PoseFactoryPostureAnalysis}
NODE_DISPLAY_NAME_MAPPINGS = {"PoseFactoryExtractPose": "Extract Pose (MediaPipe)",
                              "PoseFactoryPoseFromPhoto": "Pose From Photo",
                              "PoseFactoryPostureAnalysis": "Posture Analysis"}
