"""Imports one rig file in its own process and writes its rig report (or the error) as JSON: run by
pose_factory.rigs.inspect_file with a time limit, so an untrusted file that Blender cannot read, that
takes too long, or that is not a humanoid fails before a render starts.

    python -m blender_scripts.inspect_rig --file F --format fbx --bone-map '"auto"' --height '"auto"' --out OUT.json
"""
from __future__ import annotations

import argparse
import json
import sys


def run(argv, compute) -> int:
    """The command line both rig children share (this one and rig_view.py): parses --file, --format,
    --bone-map and --height (JSON), --name and --out, and writes compute(args) or the SpecError it
    raised as JSON to --out."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", required=True)
    ap.add_argument("--format", required=True)
    ap.add_argument("--bone-map", default='"auto"')
    ap.add_argument("--height", default='"auto"')
    ap.add_argument("--name", default=None)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    a.bone_map, a.height = json.loads(a.bone_map), json.loads(a.height)
    from pose_factory.errors import SpecError

    try:
        result = compute(a)
    except SpecError as e:
        result = {"error": e.message, "field": e.field, "allowed": e.allowed}
    with open(a.out, "w") as fh:
        json.dump(result, fh)
    return 0


def main(argv=None) -> int:
    from blender_scripts import user_rig

    return run(argv, lambda a: {"report": user_rig.inspect(a.file, a.format, a.bone_map, a.height, a.name)})


if __name__ == "__main__":
    sys.exit(main())
