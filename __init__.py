"""3D Pose Factory — ComfyUI entry point: node registrations, server routes and the front-end folder."""
if __package__:  # ComfyUI imports the pack as a package (custom_nodes.<folder>)
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
    from .nodes import routes as _routes  # noqa: F401  registers /pose_factory/* when run inside ComfyUI
else:  # pytest imports this file alone when the checkout's folder is no Python name ("ci-run"), with the checkout on the path (pyproject: pythonpath)
    from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web/js"
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
