"""Our nodes as ComfyUI serves them: the live classes (imported without ComfyUI) against the
/object_info captured from a real ComfyUI with the pack loaded (tests/fixtures/object_info.json,
re-captured by scripts/comfy_harness_check.sh). A node changed without a new capture fails here."""
import json
from pathlib import Path

import pytest

import nodes

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "object_info.json").read_text())
OURS = sorted(k for k in FIXTURE if k.startswith("PoseFactory"))
DYNAMIC = {("PoseFactoryLoadPoseFromR2", "batch_id"), ("PoseFactoryDepthNormalLoader", "batch_id")}  # the local index
# ComfyUI's input folder: the capture's held what the pack puts there (pose_factory/example_inputs.py)
INPUT_FOLDER = {("PoseFactoryCustomRig", "rig_file"): (".fbx", ".glb", ".gltf", ".vrm", ".blend")}


def served(cls_name: str) -> dict:
    """What ComfyUI's /object_info builds from a node class (server.node_info), for our classes."""
    cls = nodes.NODE_CLASS_MAPPINGS[cls_name]
    types = cls.INPUT_TYPES()
    return {
        "input": {sec: {k: list(v) if isinstance(v, tuple) else v for k, v in types[sec].items()} for sec in ("required", "optional", "hidden") if sec in types},
        "input_order": {sec: list(types[sec]) for sec in ("required", "optional", "hidden") if sec in types},
        "output": list(cls.RETURN_TYPES), "output_name": list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)),
        "output_node": bool(getattr(cls, "OUTPUT_NODE", False)), "category": cls.CATEGORY,
        "has_intermediate_output": bool(getattr(cls, "HAS_INTERMEDIATE_OUTPUT", False)),
        "display_name": nodes.NODE_DISPLAY_NAME_MAPPINGS[cls_name], "description": getattr(cls, "DESCRIPTION", ""),
    }


def test_every_node_is_in_the_capture_and_nothing_else():
    assert OURS == sorted(nodes.NODE_CLASS_MAPPINGS)


@pytest.mark.parametrize("name", OURS)
def test_node_matches_what_comfyui_served(name, fresh_data_root):  # captured from an empty data root
    live, got = served(name), FIXTURE[name]
    for key in ("output", "output_name", "output_node", "has_intermediate_output", "category", "display_name",
                "description", "input_order"):
        assert json.loads(json.dumps(live[key])) == got[key], f"{name}.{key}"
    for sec, inputs in live["input"].items():
        for inp, spec in inputs.items():
            want = json.loads(json.dumps(spec))
            if (name, inp) in INPUT_FOLDER:
                from pose_factory import example_inputs

                ours = [f for f in example_inputs.FILES if f.lower().endswith(INPUT_FOLDER[name, inp])]
                assert got["input"][sec][inp] == [want[0] + ours, want[1]], f"{name}.{sec}.{inp}"
                continue
            if (name, inp) in DYNAMIC:  # filled from this machine's index; the capture ran with an empty one
                assert isinstance(want[0], list) and isinstance(got["input"][sec][inp][0], list)
                continue
            assert want == got["input"][sec][inp], f"{name}.{sec}.{inp}"
