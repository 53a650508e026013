"""The canonical multi-view set: 4 or 8 views around the subject at one elevation, their names
and prompts, and the camera rig that shows exactly those views (so the images a user's own
SDXL/FLUX graph generates from the prompts and the cameras agree by construction).

View i looks from azimuth 360·i/N (cameras.orbit: 0 faces the subject's front, 90 its left side)."""
from __future__ import annotations

import numpy as np

from ..render import cameras
from ..errors import SpecError

VIEW_COUNTS = (4, 8)
VIEW_NAMES = {
    4: ("front", "left side", "back", "right side"),
    8: ("front", "front-left three-quarter", "left side", "back-left three-quarter", "back",
        "back-right three-quarter", "right side", "front-right three-quarter"),
}
ELEVATION = 0.0
FOCAL_LENGTH = 50.0
MARGIN = 0.08
BACKGROUND_PROMPT = "plain neutral light grey background, studio lighting, centred, whole object in frame"
# the canonical subject: centred at the origin, fitted inside this box (metres; its scale is nominal)
CANONICAL_BOX = np.array([[-0.5, -0.5, -1.0], [0.5, 0.5, 1.0]])


def check_views(n) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n not in VIEW_COUNTS:
        raise SpecError("views", f"got {n!r}", "4 or 8 (the canonical view sets)")
    return n


def rig(n: int) -> dict:
    """The JobSpec camera rig (cameras section) of the canonical N views."""
    return {"type": "orbit", "views": check_views(n), "elevation": ELEVATION, "start_azimuth": 0.0,
            "distance": "auto", "focal_length": FOCAL_LENGTH, "orthographic": False, "ortho_scale": "auto",
            "roll": 0.0, "sensor_width": 36.0, "margin": MARGIN}


def prompts(subject: str, n: int) -> list[str]:
    """One prompt per canonical view, in view order."""
    subject = (subject or "").strip()
    if not subject:
        raise SpecError("subject", "empty prompt", "a description of the object or character")
    return [f"{subject}, {name} view, {BACKGROUND_PROMPT}" for name in VIEW_NAMES[check_views(n)]]


def canonical_cameras(n: int, width: int, height: int) -> list[dict]:
    """The resolved cameras of the canonical N views for images of width × height: the rig fitted to
    CANONICAL_BOX, so a subject filling the frame as the prompts ask is reconstructed about 2 units tall."""
    corners = np.array([[x, y, z] for x in CANONICAL_BOX[:, 0] for y in CANONICAL_BOX[:, 1] for z in CANONICAL_BOX[:, 2]])
    return cameras.orbit(rig(n), width, height, corners)
