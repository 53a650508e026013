"""Pose extraction with MediaPipe (DESIGN.md §5, §7): landmarks → OpenPose keypoints, posture
angles, photo → mannequin pose.

The pure parts (mapping, posture angles, request parsing) import anywhere; the detector
(detector.py) imports MediaPipe, which lives only in the worker environment: ComfyUI's side asks
the local worker (pose_factory.jobs.client.run_worker_job) and never imports it."""
from .mapping import (MEDIAPIPE_TO_OPENPOSE, detection_frame, face_pixels, hand_pixels, keypoint_frame,
                      mediapipe_to_openpose)

__all__ = ["MEDIAPIPE_TO_OPENPOSE", "mediapipe_to_openpose", "hand_pixels", "face_pixels", "keypoint_frame",
           "detection_frame"]
