"""3D Pose Factory — ComfyUI entry point: node registrations, server routes and the front-end folder."""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from .nodes import routes as _routes  # noqa: F401  registers /pose_factory/* when run inside ComfyUI

WEB_DIRECTORY = "./web/js"
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
