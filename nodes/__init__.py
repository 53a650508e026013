"""ComfyUI nodes: thin adapters between widgets/tensors and the core package (pose_factory).
torch and ComfyUI's modules are imported inside the functions that need them."""
from . import _common  # noqa: F401  first: puts the pack's folder on sys.path for `pose_factory`
from . import batch_nodes, extract_nodes, fit_nodes, keypoint_nodes, loader_nodes, mesh_nodes, motion_nodes, people_nodes, spec_nodes

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
for _module in (spec_nodes, people_nodes, motion_nodes, batch_nodes, loader_nodes, keypoint_nodes, extract_nodes, fit_nodes, mesh_nodes):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
