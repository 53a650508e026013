"""JobSpec validation, defaults, canonical JSON, batch ids and project names (pose_factory/spec.py)."""
import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from pose_factory import spec as S
from pose_factory.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
BASE = {"subjects": [{"poses": ["a_pose"]}]}


def make(**over):
    """BASE with dotted-path overrides: make(**{"cameras.views": 0})."""
    raw = copy.deepcopy(BASE)
    for path, value in over.items():
        *parents, last = path.split(".")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


def refused(raw, field, *fragments) -> SpecError:
    with pytest.raises(SpecError) as info:
        S.normalize_spec(raw)
    e = info.value
    assert e.field == field, str(e)
    assert str(e).startswith(f"{field}: "), str(e)
    for f in fragments:
        assert f in str(e), str(e)
    return e


# --- defaults -----------------------------------------------------------------------------------
def test_defaults_filled_and_input_untouched():
    raw = make()
    before = copy.deepcopy(raw)
    s = S.normalize_spec(raw)
    assert raw == before  # a NEW dict; the caller's is not modified
    assert s["schema_version"] == "1.0" and s["kind"] == "pose_batch" and s["project"] == "default"
    assert s["render"] == {"width": 512, "height": 512, "passes": list(S.ALL_PASSES), "depth_range": "batch",
                           "shaded_samples": 1, "openpose": {"hands": True, "face": True, "sdxl_sticks": False,
                                                                   "occluded": "hide"},
                           "device": "auto"}
    assert s["cameras"] == {"type": "orbit", "views": 4, "elevation": 10.0, "start_azimuth": 0.0,
                            "distance": "auto", "focal_length": 50.0, "orthographic": False, "ortho_scale": "auto",
                            "roll": 0.0, "sensor_width": 36.0, "margin": 0.08}
    subj = s["subjects"][0]
    assert (subj["type"], subj["height"], subj["build"]) == ("mannequin", 1.75, "average")
    assert len(subj["poses"]) == 1 and subj["poses"][0]["preset"] == "a_pose"


def test_normalize_is_idempotent():
    s = S.normalize_spec(make(**{"cameras.views": 8, "render.passes": ["depth", "openpose"]}))
    assert S.normalize_spec(s) == s
    assert json.loads(json.dumps(s)) == s  # plain JSON


def test_passes_ordered_deduplicated_keypoints_added():
    s = S.normalize_spec(make(**{"render.passes": ["shaded", "depth", "shaded"]}))
    assert s["render"]["passes"] == ["keypoints", "depth", "shaded"]


def test_list_cameras_defaults():
    s = S.normalize_spec(make(cameras={"type": "list", "cameras": [{"location": [0, -3, 1], "look_at": [0, 0, 1]}]}))
    assert s["cameras"] == {"type": "list", "cameras": [{
        "location": [0.0, -3.0, 1.0], "look_at": [0.0, 0.0, 1.0], "roll": 0.0, "focal_length": 50.0,
        "orthographic": False, "ortho_scale": 2.5, "shift": [0.0, 0.0], "sensor_width": 36.0}]}


def test_schema_minor_versions_accepted():
    for v in ("1.0", "1.3", "1"):
        assert S.normalize_spec(make(schema_version=v))["schema_version"] == S.SPEC_SCHEMA_VERSION


# --- one clear error per bad spec ---------------------------------------------------------------
@pytest.mark.parametrize("over, field, fragments", [
    ({"cameras.views": 0}, "cameras.views", ("got 0", "allowed: an integer from 1 to 64")),
    ({"cameras.views": 65}, "cameras.views", ("got 65",)),
    ({"cameras.views": "4"}, "cameras.views", ("got '4'", "an integer")),
    ({"cameras.views": True}, "cameras.views", ("got true", "an integer")),  # bool is not an int
    ({"cameras.views": 4.0}, "cameras.views", ("got 4.0",)),
    ({"render.width": 10, "render.height": 10}, "render.width", ("got 10", "from 64 to 2048")),
    ({"render.width": 5000}, "render.width", ("got 5000", "2048")),
    ({"render.height": 5000}, "render.height", ("got 5000",)),
    ({"render.width": 500}, "render.width", ("got 500", "a multiple of 8")),
    ({"render.shaded_samples": 0}, "render.shaded_samples", ("1 to 1024",)),
    ({"render.passes": []}, "render.passes", ("non-empty",)),
    ({"render.passes": "depth"}, "render.passes", ("got 'depth'",)),
    ({"render.passes": ["depth", "albedo"]}, "render.passes[1]", ("got 'albedo'", "openpose")),
    ({"render.depth_range": "frame"}, "render.depth_range", ("batch, image",)),
    ({"render.device": "cuda"}, "render.device", ("auto, cpu, gpu",)),
    ({"render.openpose": {"hands": 1}}, "render.openpose.hands", ("true or false",)),
    ({"render.openpose": {"occluded": "behind"}}, "render.openpose.occluded", ("got 'behind'", "hide, show, depth")),
    ({"cameras.distance": -2.0}, "cameras.distance", ("got -2.0", '"auto" or a number from 0.5')),
    ({"cameras.distance": 0}, "cameras.distance", ("got 0",)),
    ({"cameras.distance": "far"}, "cameras.distance", ("got 'far'",)),
    ({"cameras.elevation": 90}, "cameras.elevation", ("-89 to 89",)),
    ({"cameras.elevation": float("nan")}, "cameras.elevation", ("nan",)),
    ({"cameras.focal_length": 2}, "cameras.focal_length", ("5 to 300 mm",)),
    ({"cameras.roll": 200}, "cameras.roll", ("-180 to 180",)),
    ({"cameras.margin": 0.5}, "cameras.margin", ("0 to 0.45",)),
    ({"cameras.orthographic": "yes"}, "cameras.orthographic", ("true or false",)),
    ({"cameras.type": "spiral"}, "cameras.type", ("orbit, list",)),
    ({"cameras.cameras": []}, "cameras.cameras", ("unknown key 'cameras'",)),  # not an orbit key
    ({"render.colour": "red"}, "render.colour", ("unknown key 'colour'", "width, height")),
    ({"cameras.view": 4}, "cameras.view", ("unknown key", "did you mean 'views'?")),
    ({"extra": 1}, "extra", ("unknown key", "schema_version, kind, project")),
    ({"schema_version": "2.0"}, "schema_version", ("got '2.0'", "1.x")),
    ({"schema_version": 1.0}, "schema_version", ("got 1.0",)),
    ({"kind": "reconstruct"}, "kind", ("pose_batch",)),
    ({"project": "My Project"}, "project", ("lowercase letters",)),
    ({"render": [512, 512]}, "render", ("an object",)),
])
def test_bad_field_gives_one_error_naming_it(over, field, fragments):
    refused(make(**over), field, *fragments)


def test_bad_subjects():
    nine = {"subjects": [{"poses": ["a_pose"]}] * 9}
    refused(nine, "subjects", "got 9 subjects", "1 to 8 subjects")
    refused({"subjects": []}, "subjects", "got 0 subjects")
    refused({}, "subjects", "missing")
    refused({"subjects": [{}]}, "subjects[0].poses", "missing")
    refused({"subjects": [{"poses": []}]}, "subjects[0].poses", "1 to 256")
    refused({"subjects": [{"poses": ["a_pose"] * 257}]}, "subjects[0].poses", "1 to 256")
    refused({"subjects": [{"poses": ["a_pose", 3]}]}, "subjects[0].poses[1]", "a preset name or a pose object")
    refused({"subjects": [{"poses": ["a_pose"], "height": 3}]}, "subjects[0].height", "1.2 to 2.2")
    refused({"subjects": [{"poses": ["a_pose"], "build": "tall"}]}, "subjects[0].build", "slim, average, heavy")
    refused({"subjects": [{"poses": ["a_pose"], "type": "robot"}]}, "subjects[0].type", "mannequin")
    refused({"subjects": [{"poses": ["a_pose"], "colour": 1}]}, "subjects[0].colour", "unknown key")


def test_bad_list_cameras():
    cam = {"location": [0, -3, 1], "look_at": [0, 0, 1]}
    refused(make(cameras={"type": "list", "cameras": []}), "cameras.cameras", "1 to 64")
    refused(make(cameras={"type": "list", "cameras": [cam] * 65}), "cameras.cameras", "1 to 64")
    refused(make(cameras={"type": "list", "cameras": [{"look_at": [0, 0, 1]}]}), "cameras.cameras[0].location",
            "missing")
    refused(make(cameras={"type": "list", "cameras": [dict(cam, location=[0, 1])]}),
            "cameras.cameras[0].location", "a list of 3 numbers")
    refused(make(cameras={"type": "list", "cameras": [cam, dict(cam, look_at=[0, "0", 1])]}),
            "cameras.cameras[1].look_at[1]", "got '0'")
    refused(make(cameras={"type": "list", "cameras": [dict(cam, look_at=[0, -3, 1])]}),
            "cameras.cameras[0].look_at", "own location")
    refused(make(cameras={"type": "list", "cameras": [dict(cam, views=2)]}), "cameras.cameras[0].views",
            "unknown key")


def test_error_is_a_value_error_that_pickles():
    e = refused(make(**{"cameras.views": 0}), "cameras.views")
    assert isinstance(e, ValueError)
    assert str(e) == "cameras.views: got 0, allowed: an integer from 1 to 64"
    assert e.allowed == "an integer from 1 to 64"
    back = pickle.loads(pickle.dumps(e))  # errors cross process boundaries (worker -> client)
    assert str(back) == str(e) and back.field == e.field


# --- pose entries: content checks are poses.normalize_pose_entry's (lead's module) ------------------
# These depend on pose_factory.render.poses: they check that normalize_spec hands each entry over with
# its field path and keeps what comes back.
def test_pose_string_shorthand_equals_object():
    a = S.normalize_spec(make(**{"subjects": [{"poses": ["walk_left_step"]}]}))
    b = S.normalize_spec(make(**{"subjects": [{"poses": [{"preset": "walk_left_step"}]}]}))
    assert a == b


def test_pose_content_error_names_the_entry():
    e = refused({"subjects": [{"poses": ["a_pose", "a_pose", "jumpin"]}]}, "subjects[0].poses[2].preset", "jumpin")
    assert "jumping" in str(e)


# --- canonical JSON and batch ids -----------------------------------------------------------------
def test_canonical_json():
    assert S.canonical_json({"b": [1, 0.30000001, -0.0], "a": True}) == '{"a":true,"b":[1,0.3,0.0]}'
    assert S.canonical_json({"x": -0.00001}) == '{"x":0.0}'  # rounds to -0.0, written as 0.0
    with pytest.raises(ValueError):
        S.canonical_json({"x": float("inf")})


def test_batch_id_deterministic_and_project_independent():
    a = S.normalize_spec(make(project="alpha"))
    b = S.normalize_spec(make(project="beta"))
    assert len(S.batch_id(a)) == 16 and int(S.batch_id(a), 16) >= 0
    assert S.batch_id(a) == S.batch_id(copy.deepcopy(a)) == S.batch_id(b)
    assert S.batch_id(make()) == S.batch_id(a)  # a raw spec is normalized first


def test_batch_id_is_stable_across_processes():
    # no dependence on hash randomisation or dict order
    code = ("from pose_factory import spec as S;"
            "print(S.batch_id(S.normalize_spec({'subjects': [{'poses': ['a_pose']}], 'cameras': {'views': 3}})))")
    ids = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT, env={"PYTHONHASHSEED": str(seed), "PYTHONPATH": str(ROOT)}).stdout for seed in (1, 2)}
    assert len(ids) == 1
    assert ids.pop().strip() == S.batch_id(make(cameras={"views": 3}))


def test_batch_id_changes_with_content_and_recipe():
    a = S.normalize_spec(make())
    assert S.batch_id(a, S.RECIPE_VERSION + 1) != S.batch_id(a)
    assert S.batch_id(make(**{"cameras.views": 5})) != S.batch_id(a)
    assert S.batch_id(make(**{"render.width": 520})) != S.batch_id(a)


def test_float_rounding_gives_same_id():
    a = make(**{"cameras.elevation": 0.3, "subjects": [{"poses": ["a_pose"], "height": 1.8}]})
    b = make(**{"cameras.elevation": 0.30000001, "subjects": [{"poses": ["a_pose"], "height": 1.80000002}]})
    assert S.normalize_spec(b)["cameras"]["elevation"] == 0.3
    assert S.batch_id(a) == S.batch_id(b)
    # integers and floats of the same value are the same request; defaults written out too
    assert S.batch_id(make(**{"cameras.elevation": 10})) == S.batch_id(make())
    assert S.batch_id(make(**{"cameras.start_azimuth": -0.0})) == S.batch_id(make())


# --- projects -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "default", "pose-set_2", "0abc", "x" * 64])
def test_project_name_ok(name):
    assert S.validate_project_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "-a", "_a", "A", "a b", "a/b", "a.b", "x" * 65, None, 3])
def test_project_name_refused(name):
    with pytest.raises(SpecError) as info:
        S.validate_project_name(name)
    assert info.value.field == "project" and "lowercase letters" in str(info.value)


def test_sanitize_project_name():
    assert S.sanitize_project_name("My Poses (v2)") == "my-poses-v2"
    assert S.sanitize_project_name("  Dance   Set ") == "dance-set"
    assert S.sanitize_project_name("../etc") == "etc"
    assert len(S.sanitize_project_name("a" * 100)) == 64
    for bad in ("", "   ", "!!!", ".."):
        with pytest.raises(SpecError):
            S.sanitize_project_name(bad)


# --- files ----------------------------------------------------------------------------------------
def test_load_spec_file_json_and_yaml(tmp_path):
    j = tmp_path / "s.json"
    j.write_text(json.dumps(make(**{"cameras.views": 2})))
    assert S.normalize_spec(S.load_spec_file(j))["cameras"]["views"] == 2
    pytest.importorskip("yaml")
    y = tmp_path / "s.yaml"
    y.write_text("subjects:\n  - poses: [a_pose, t_pose]\ncameras:\n  views: 3\n")
    s = S.normalize_spec(S.load_spec_file(str(y)))
    assert s["cameras"]["views"] == 3 and len(s["subjects"][0]["poses"]) == 2


def test_load_spec_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        S.load_spec_file(bad)
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2]")
    with pytest.raises(SpecError, match="a JobSpec object"):
        S.load_spec_file(lst)


def test_core_imports_without_heavy_packages():
    code = ("import sys, pose_factory.spec, pose_factory.manifest, pose_factory.storage, pose_factory.errors;"
            "print(sorted(m for m in ('torch', 'bpy', 'cv2', 'yaml', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


# --- several people (issue 22) -----------------------------------------------------------------
def test_up_to_8_subjects_keep_their_order():
    raw = {"subjects": [{"poses": ["a_pose"], "height": 1.2 + 0.1 * k} for k in range(8)]}
    s = S.normalize_spec(raw)
    assert [p["height"] for p in s["subjects"]] == [round(1.2 + 0.1 * k, 4) for k in range(8)]


def test_place_is_written_only_when_not_the_default():
    one = S.normalize_spec({"subjects": [{"poses": ["a_pose"], "place": {"position": [0, 0], "facing": 0}}]})
    assert "place" not in one["subjects"][0]
    assert S.batch_id(one) == S.batch_id(S.normalize_spec(BASE))
    s = S.normalize_spec({"subjects": [{"poses": ["a_pose"], "place": {"position": [1.5, -2], "facing": -90}}]})
    assert s["subjects"][0]["place"] == {"position": [1.5, -2.0], "facing": -90.0}
    part = S.normalize_spec({"subjects": [{"poses": ["a_pose"], "place": {"facing": 30}}]})
    assert part["subjects"][0]["place"] == {"position": [0.0, 0.0], "facing": 30.0}
    assert S.batch_id(s) != S.batch_id(part)


@pytest.mark.parametrize("place, field, fragment", [
    ({"position": [51, 0]}, "subjects[1].place.position[0]", "-50 to 50"),
    ({"position": [0, -50.5]}, "subjects[1].place.position[1]", "-50 to 50"),
    ({"position": [0]}, "subjects[1].place.position", "a list of 2 numbers"),
    ({"facing": 361}, "subjects[1].place.facing", "-360 to 360"),
    ({"facing": "north"}, "subjects[1].place.facing", "-360 to 360"),
    ({"height": 1}, "subjects[1].place.height", "unknown key"),
    ([0, 0], "subjects[1].place", "an object"),
])
def test_bad_place_names_the_field(place, field, fragment):
    refused({"subjects": [{"poses": ["a_pose"]}, {"poses": ["a_pose"], "place": place}]}, field, fragment)


def test_pose_count_rule_one_or_the_longest():
    s = S.normalize_spec({"subjects": [{"poses": ["a_pose"]}, {"poses": ["t_pose", "a_pose", "waving"]},
                                       {"poses": ["rest", "rest", "rest"]}]})
    assert [len(p["poses"]) for p in s["subjects"]] == [1, 3, 3]
    assert S.job_size(s)["poses"] == 3 and S.job_size(s)["images"] == 3 * 4
    e = refused({"subjects": [{"poses": ["a_pose"] * 3}, {"poses": ["a_pose"] * 2}]},
                "subjects[1].poses", "got 2 poses", "subjects[0] has 3", "1 pose")
    assert "3" in e.allowed
    # the longest list may come after the one that is wrong
    refused({"subjects": [{"poses": ["a_pose"] * 2}, {"poses": ["a_pose"] * 5}]}, "subjects[0].poses",
            "got 2 poses while subjects[1] has 5")


def test_each_subject_is_validated_by_its_index():
    refused({"subjects": [{"poses": ["a_pose"]}, {"poses": ["a_pose"], "build": "tall"}]},
            "subjects[1].build", "slim, average, heavy")
    refused({"subjects": [{"poses": ["a_pose"]}, {}]}, "subjects[1].poses", "missing")
    refused({"subjects": [{"poses": ["a_pose"]}, "mannequin"]}, "subjects[1]", "a subject object")
    refused({"subjects": [{"poses": ["a_pose"]}, {"poses": ["a_pose", "jumpin"]}]},
            "subjects[1].poses[1].preset", "jumpin")


def test_a_rig_subject_without_its_file_is_refused_by_name():
    """Type "rig" goes to pose_factory.rigs (custom rigs); where this build has none, the error says
    only mannequins are allowed. Either way a rig without its file is a SpecError on that subject."""
    with pytest.raises(SpecError) as info:
        S.normalize_spec({"subjects": [{"poses": ["a_pose"]}, {"type": "rig", "poses": ["a_pose"]}]})
    assert info.value.field in ("subjects[1].type", "subjects[1].rig"), str(info.value)
