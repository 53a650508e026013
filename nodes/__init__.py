"""ComfyUI nodes: thin adapters between widgets/tensors and the core package (pose_factory).
The node set arrives with the nodes issue; the pack already loads in ComfyUI with none."""
NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
