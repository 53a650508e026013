"""A .blend rig carrying Python that must never run when a user's rig is imported, for
tests/test_user_rig.py: python tests/blender/make_evil_blend.py OUT.blend MARKER_FILE [--import]
The mannequin rig (make_rig, Mixamo names) with a scripted driver on the armature and a text block
registered as a module, each of which writes MARKER_FILE when Python runs it. Prints JSON:
{"driver_live": true} when the driver did write the file here with scripts allowed (so the test's
oracle is live); the file is removed before saving. --import: imports OUT.blend through
user_rig.RigPerson in a worker whose preferences allow scripts to run (as a user's Blender may),
poses it, and prints {"report": ..., "ran": whether MARKER_FILE was written}."""
import json
import os
import sys

import bpy

from blender_scripts import make_rig, scene as S, user_rig
from pose_factory.render import poses


def import_it(path, marker):
    sc = S.reset()
    bpy.context.preferences.filepaths.use_scripts_auto_execute = True
    subject = {"type": "rig", "rig": {"sha256": "0" * 64, "format": "blend"}, "bone_map": "auto", "height": "auto",
               "poses": [poses.normalize_pose_entry("waving", "p")]}
    person = user_rig.RigPerson(sc, subject, path, 0)
    bpy.context.preferences.filepaths.use_scripts_auto_execute = True  # even if allowed afterwards
    person.pose(0)
    person.rig.arm.location.x += 0.1
    bpy.context.view_layer.update()
    sc.frame_set(3)
    print(json.dumps({"report": person.report, "ran": os.path.exists(marker)}))


def main(out, marker):
    make_rig.make_rig(out, naming="mixamo", rest="a-pose", fmt="blend", sidecar=False)
    bpy.ops.wm.open_mainfile(filepath=out)  # our own file: opened here
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    code = f"__import__('pathlib').Path({marker!r}).write_text('ran')"
    fc = arm.driver_add("location", 0)
    fc.driver.type = "SCRIPTED"
    fc.driver.expression = f"0.0 if {code} else 0.0"
    text = bpy.data.texts.new("evil.py")
    text.write(code + "\n")
    text.use_module = True
    bpy.context.preferences.filepaths.use_scripts_auto_execute = True
    arm.location.x = 0.25
    bpy.context.view_layer.update()
    bpy.context.scene.frame_set(2)
    live = os.path.exists(marker)
    if live:
        os.remove(marker)
    bpy.ops.wm.save_mainfile(compress=True)
    print(json.dumps({"driver_live": live}))


if __name__ == "__main__":
    (import_it if sys.argv[3:] == ["--import"] else main)(sys.argv[1], sys.argv[2])
