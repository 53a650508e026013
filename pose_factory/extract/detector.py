"""The MediaPipe pose detector, worker side only (DESIGN.md §2: MediaPipe never imports inside
ComfyUI's Python). Two backends, chosen when the detector is made:

- ``tasks``: MediaPipe's Tasks API ``PoseLandmarker`` with a ``.task`` model file, chosen when
  POSE_FACTORY_MEDIAPIPE_TASK names one (newer MediaPipe releases carry no models; a worker
  image bakes the file in at build time). Untested here: no ``.task`` file ships with this
  repository and tests download nothing; a missing or unreadable file is an error naming it.
- ``solutions``: ``mediapipe.solutions.pose`` with ``model_complexity=1``, whose model is inside
  the 0.10.21 wheel (works offline; complexities 0 and 2 download at run time and are refused).
  Hands (``mediapipe.solutions.hands``) and the face (``mediapipe.solutions.face_mesh`` with
  its iris refinement, 478 landmarks), both in the wheel too, only with this backend. The face
  mesh runs on a crop around the head the pose model found (a whole-body photo's face is too
  small for FaceMesh's own face detector), so the face is that person's.

When neither can run, ExtractorUnavailable says which was tried and why. ``Detector.backend``
names the one that ran; job outputs carry it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

TASK_ENV = "POSE_FACTORY_MEDIAPIPE_TASK"
MODEL_COMPLEXITY = 1  # the one pose model inside the 0.10.21 wheel
FACE_CROP = 1.6  # the face crop's half side, in spans of the pose's head landmarks (nose, eyes, ears, mouth)
FACE_MIN_SIDE = 256  # a smaller crop is scaled up to this before FaceMesh


class ExtractorUnavailable(RuntimeError):
    """No MediaPipe backend can run in this environment; the message says why for each."""


@dataclass
class Detection:
    """One image's person: ``landmarks`` (33, 4) normalised x, y, z and visibility; ``world``
    (33, 4) metres about the hips' centre (MediaPipe's world landmarks: x to the image's right,
    y down, z away from the camera); ``hands`` {"left"|"right": (21, 3) normalised or None}, left
    meaning the subject's left hand; ``face`` (478, 3) FaceMesh landmarks normalised to the whole
    image, or None (not asked for, or not found)."""
    landmarks: np.ndarray
    world: np.ndarray
    hands: dict = field(default_factory=dict)
    face: np.ndarray | None = None


def _points(landmarks, n: int) -> np.ndarray:
    return np.array([[p.x, p.y, p.z, getattr(p, "visibility", 1.0) or 0.0] for p in list(landmarks)[:n]], float)


class Detector:
    """detect(rgb uint8 (H, W, 3)) → Detection or None (no person). One model per detector,
    loaded once: keep a detector for the worker's life."""

    def __init__(self, hands: bool = False, task_path: str | None = None, face: bool = False):
        self.want_hands, self.want_face = hands, face
        task_path = task_path if task_path is not None else os.environ.get(TASK_ENV, "")
        try:
            import mediapipe as mp
        except ImportError as e:
            raise ExtractorUnavailable(
                f"MediaPipe is not installed in this Python ({e}): pose extraction runs in the worker "
                "environment (pod_worker/requirements.txt, mediapipe==0.10.21); set worker_python to it") from None
        self.mp = mp
        if task_path:
            self._open_tasks(task_path)
        else:
            self._open_solutions()

    def _open_tasks(self, path: str) -> None:
        if not os.path.isfile(path):
            raise ExtractorUnavailable(f"{TASK_ENV} names {path!r}, which is not a file: give the path of a "
                                       "MediaPipe pose_landmarker .task model, or unset it to use the model "
                                       "inside the mediapipe 0.10.21 wheel")
        try:
            from mediapipe.tasks.python import BaseOptions, vision
            opts = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=path),
                                                running_mode=vision.RunningMode.IMAGE, num_poses=1)
            self._tasks = vision.PoseLandmarker.create_from_options(opts)
        except Exception as e:  # MediaPipe raises RuntimeError/ValueError for a bad model file
            raise ExtractorUnavailable(f"the MediaPipe Tasks backend could not load {path!r} ({TASK_ENV}): "
                                       f"{type(e).__name__}: {e}") from None
        self.backend, self.model, self._hands, self._face = "tasks", os.path.basename(path), None, None
        wanted = [w for w, on in (("hands", self.want_hands), ("face", self.want_face)) if on]
        self.hands_note = f"{' and '.join(wanted)}: only with the solutions backend (not extracted)" if wanted else ""

    def _open_solutions(self) -> None:
        solutions = getattr(self.mp, "solutions", None)
        if solutions is None or not hasattr(solutions, "pose"):
            raise ExtractorUnavailable(
                f"mediapipe {getattr(self.mp, '__version__', '?')} has no mediapipe.solutions.pose (releases after "
                f"0.10.21 dropped it with its bundled models), and {TASK_ENV} names no .task model file: install "
                "mediapipe==0.10.21 in the worker environment, or set it to a pose_landmarker .task file")
        self._pose = solutions.pose.Pose(static_image_mode=True, model_complexity=MODEL_COMPLEXITY)
        self._hands = (solutions.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=1)
                       if self.want_hands else None)
        self._face = (solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
                      if self.want_face else None)
        self.backend, self.model, self.hands_note = "solutions", f"pose_landmark model_complexity={MODEL_COMPLEXITY}", ""

    def detect(self, rgb: np.ndarray) -> Detection | None:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"detect expects an (H, W, 3) RGB image, got shape {rgb.shape}")
        if self.backend == "tasks":
            res = self._tasks.detect(self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=rgb))
            if not res.pose_landmarks:
                return None
            return Detection(_points(res.pose_landmarks[0], 33), _points(res.pose_world_landmarks[0], 33))
        res = self._pose.process(rgb)
        if not res.pose_landmarks:
            return None
        det = Detection(_points(res.pose_landmarks.landmark, 33), _points(res.pose_world_landmarks.landmark, 33))
        if self._hands is not None:
            det.hands = self._assign_hands(self._hands.process(rgb), det.landmarks, rgb.shape)
        if self._face is not None:
            det.face = self._find_face(rgb, det.landmarks)
        return det

    def _find_face(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        """FaceMesh on a square crop around the pose's head landmarks (0-10), scaled up to at least
        FACE_MIN_SIDE; its landmarks mapped back, normalised to the whole image."""
        import cv2

        h, w = rgb.shape[:2]
        head = landmarks[:11, :2] * [w, h]
        centre = head.mean(0)
        half = FACE_CROP * max(float(np.ptp(head[:, 0])), float(np.ptp(head[:, 1])), 4.0)
        x0, y0 = (max(int(np.floor(c - half)), 0) for c in centre)
        x1, y1 = min(int(np.ceil(centre[0] + half)), w), min(int(np.ceil(centre[1] + half)), h)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = rgb[y0:y1, x0:x1]
        s = max(1.0, FACE_MIN_SIDE / min(crop.shape[:2]))
        if s > 1.0:
            crop = cv2.resize(crop, (round(crop.shape[1] * s), round(crop.shape[0] * s)), interpolation=cv2.INTER_LINEAR)
        res = self._face.process(np.ascontiguousarray(crop))
        if not res.multi_face_landmarks:
            return None
        pts = _points(res.multi_face_landmarks[0].landmark, 478)[:, :3]
        # normalised to the (scaled) crop → the image's continuous pixel coordinates → normalised
        pts[:, 0] = (pts[:, 0] * (x1 - x0) + x0) / w
        pts[:, 1] = (pts[:, 1] * (y1 - y0) + y0) / h
        return pts

    @staticmethod
    def _assign_hands(res, landmarks: np.ndarray, shape) -> dict:
        """Each hand found goes to the body wrist (pose landmark 15 left, 16 right) its own wrist is
        nearest to; MediaPipe's handedness label assumes a mirrored selfie, so it is not used."""
        out = {"left": None, "right": None}
        found = [_points(h.landmark, 21) for h in (res.multi_hand_landmarks or [])]
        scale = np.array([shape[1], shape[0]], float)
        for side, wrist in (("left", 15), ("right", 16)):
            if not found:
                break
            d = [np.linalg.norm((h[0, :2] - landmarks[wrist, :2]) * scale) for h in found]
            i = int(np.argmin(d))
            if d[i] <= 0.1 * max(shape[:2]):
                out[side] = found.pop(i)
        return out

    def close(self) -> None:
        for m in (getattr(self, "_pose", None), getattr(self, "_hands", None), getattr(self, "_tasks", None),
                  getattr(self, "_face", None)):
            if m is not None:
                m.close()
