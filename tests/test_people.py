"""Several people in one scene (issue 22, point 3), on real renders.

Two mannequins from one camera: a heavy one in front, a taller slim one in a T-pose 1 m behind it
(its arms and head show). The oracle is each person rendered ALONE with the same camera (an explicit camera, so no
auto-framing moves it) and the same place:
- the instance map labels every person pixel of the pair with the person whose alone-render covers
  that pixel and is the nearer there (depth16 of the alone-renders): 0 mislabeled pixels;
- a joint of the back person that the front person's alone-render covers (the whole 3x3 around the
  joint's pixel, nearer than the joint) is hidden in the pair though visible alone, and kept in our
  field at the same place; one clear of the front person stays visible; the front person's
  keypoints are those of its alone-render;
- a 1-pose subject holds its pose in every frame; the keypoints JSON has one entry per person in
  subject order, and the manifest's joints_3d a "people" list matching the alone-renders.
"""
import json

import numpy as np
import pytest

from pose_factory import spec as spec_mod
from pose_factory.imageio import read_png
from pose_factory.render import cameras, mannequin as mq, openpose as op, poses
from pose_factory.storage import LocalStorage, batch_prefix

W, H = 256, 384
CAMERA = {"type": "list", "cameras": [{"location": [0.0, -4.0, 1.1], "look_at": [0.0, 0.0, 1.0]}]}
FRONT = {"type": "mannequin", "height": 1.7, "build": "heavy", "poses": ["a_pose", "walk_left_step"]}
BACK = {"type": "mannequin", "height": 1.9, "build": "slim", "poses": ["t_pose"],
        "place": {"position": [0.05, 1.0], "facing": 10}}


def spec_of(subjects):
    return {"project": "people", "render": {"width": W, "height": H, "passes": ["keypoints", "depth16", "seg"]},
            "cameras": CAMERA, "subjects": subjects}


def load(store, tmp, manifest):
    folder = tmp / batch_prefix(manifest["project"], manifest["batch_id"])
    out = []
    for e in sorted(manifest["entries"], key=lambda e: e["frame"]):
        files = e["files"]
        out.append({"kp": json.loads((folder / files["keypoints"]["key"]).read_text()),
                    "depth": read_png(str(folder / files["depth16"]["key"])),
                    "mask": read_png(str(folder / files["mask"]["key"])),
                    "instance": read_png(str(folder / files["instance"]["key"])) if "instance" in files else None,
                    "files": set(files)})
    return out


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    from pose_factory.render import render_batch

    tmp = tmp_path_factory.mktemp("people")
    store = LocalStorage(tmp)
    out = {}
    for name, subjects in (("pair", [FRONT, BACK]), ("front", [FRONT]), ("back", [BACK])):
        manifest, _ = render_batch(spec_of(subjects), store)
        out[name] = {"manifest": manifest, "frames": load(store, tmp, manifest)}
    return out


def alone_frame(renders, name, f):
    """Frame f of a person rendered alone (a 1-pose subject alone is a 1-frame batch)."""
    return poses.frame_entry(renders[name]["frames"], f)


def body(person, which="public"):
    flat = person["pose_keypoints_2d"] if which == "public" else person[op.OWN_KEY]["occluded"]["pose_keypoints_2d"]
    return np.array(flat).reshape(18, 3)


@pytest.mark.blender
def test_instance_map_has_no_mislabeled_pixel_against_per_person_renders(renders):
    for f, pair in enumerate(renders["pair"]["frames"]):
        inst = pair["instance"]
        alone = [alone_frame(renders, "front", f), alone_frame(renders, "back", f)]
        masks = [a["mask"] > 0 for a in alone]
        depth = [np.where(m, a["depth"].astype(float), np.inf) for a, m in zip(alone, masks)]
        assert inst.dtype == np.uint8 and inst.shape == (H, W)
        assert set(np.unique(inst)) == {0, 1, 2}
        assert ((inst > 0) == (pair["mask"] > 0)).all()
        assert ((inst > 0) == (masks[0] | masks[1])).all()
        wrong = 0
        for k in (0, 1):
            mine = inst == k + 1
            wrong += int((mine & ~masks[k]).sum())  # not in person k's own silhouette
            wrong += int((mine & (depth[1 - k] < depth[k])).sum())  # the other is nearer there
        assert wrong == 0, f"frame {f}: {wrong} mislabeled pixels"
        overlap = masks[0] & masks[1]
        assert overlap.sum() > 500 and (inst[overlap] == 1).all()  # the front person covers the back one


@pytest.mark.blender
def test_back_persons_covered_joints_are_hidden_and_kept(renders):
    covered_total = clear_total = 0
    for f, pair in enumerate(renders["pair"]["frames"]):
        front_alone, back_alone = alone_frame(renders, "front", f), alone_frame(renders, "back", f)
        people = pair["kp"]["people"]
        assert len(people) == 2
        # nothing stands in front of the front person: its keypoints are those it has alone
        assert people[0] == front_alone["kp"]["people"][0]
        alone, ours = body(back_alone["kp"]["people"][0]), body(people[1])
        kept = body(people[1], "covered")
        front_mask, front_depth = front_alone["mask"] > 0, front_alone["depth"].astype(float) / 1000
        joint_depth = back_alone["kp"]["people"][0][op.OWN_KEY]["depth"]["pose_keypoints_2d"]
        for j in range(18):
            if alone[j, 2] == 0:  # hidden alone: hidden in the pair too
                assert ours[j, 2] == 0
                continue
            x, y = int(round(alone[j, 0])), int(round(alone[j, 1]))
            win = (slice(max(y - 1, 0), y + 2), slice(max(x - 1, 0), x + 2))
            covered = front_mask[win].all() and (front_depth[win] < joint_depth[j]).all()
            if covered:
                covered_total += 1
                assert ours[j, 2] == 0, f"frame {f}: joint {op.BODY_NAMES[j]} covered by the front person"
                assert kept[j, 2] == 1 and np.allclose(kept[j, :2], alone[j, :2], atol=1e-6)
            elif not front_mask[win].any():
                clear_total += 1
                assert ours[j, 2] == 1 and np.allclose(ours[j], alone[j], atol=1e-6), \
                    f"frame {f}: joint {op.BODY_NAMES[j]} clear of the front person"
    assert covered_total >= 6 and clear_total >= 6, (covered_total, clear_total)


@pytest.mark.blender
def test_held_pose_people_in_manifest_and_single_person_files(renders):
    pair = renders["pair"]["manifest"]
    assert pair["frames"] == 2
    j3d = pair["joints_3d"]
    for f in range(2):
        people = j3d[f]["people"]
        assert len(people) == 2
        assert people[0] == {k: j3d[f][k] for k in ("joints", "keypoints")}  # person 0 stays at the top
        assert people[0]["keypoints"] == renders["front"]["manifest"]["joints_3d"][f]["keypoints"]
        assert people[1]["keypoints"] == renders["back"]["manifest"]["joints_3d"][0]["keypoints"]
    assert j3d[0]["people"][1] == j3d[1]["people"][1]  # the 1-pose subject holds its pose
    assert j3d[0]["people"][0] != j3d[1]["people"][0]
    # the held subject alone: 1 frame; a single person's batch has no instance map and no people list
    back = renders["back"]["manifest"]
    assert back["frames"] == 1 and "people" not in back["joints_3d"][0]
    assert all("instance" not in e["files"] for e in back["entries"])
    assert all("instance" in e["files"] for e in pair["entries"])
    assert "rig_reports" not in pair
    # the back person stands where its place puts it (its feet around y = 1 m, x = 0.05 m)
    ankles = np.array([people["joints"][n] for people in [j3d[0]["people"][1]] for n in ("l_ankle", "r_ankle")])
    assert np.allclose(ankles[:, :2].mean(axis=0), [0.05, 1.0], atol=0.06)
    cam = pair["views"][0]
    xy, _ = cameras.project(cam, np.array(j3d[0]["people"][1]["keypoints"])[:18])
    seen = body(renders["pair"]["frames"][0]["kp"]["people"][1])
    assert np.allclose(xy[seen[:, 2] == 1], seen[seen[:, 2] == 1, :2], atol=1e-4)


def test_facing_turns_counter_clockwise_from_minus_y():
    """facing 0 faces -Y (the mannequin's front); 90 turns it counter-clockwise seen from above, so
    it faces +X; the position moves it on the floor, its height kept."""
    body_ = mq.build()
    posed = poses.pose_body(body_, "a_pose")
    nose, neck = (mq.BODY_KEYPOINTS.index(n) for n in ("nose", "neck"))

    def facing(place):
        kp = mq.posed_keypoints(body_, poses.placed(posed, place))
        d = kp[nose] - kp[neck]
        return d[:2] / np.linalg.norm(d[:2]), kp

    ahead, kp0 = facing(None)
    assert np.allclose(ahead, [0, -1], atol=0.05)
    ahead, kp = facing({"position": [0.0, 0.0], "facing": 90.0})
    assert np.allclose(ahead, [1, 0], atol=0.05)
    ahead, kp = facing({"position": [2.0, -3.0], "facing": 180.0})
    assert np.allclose(ahead, [0, 1], atol=0.05)
    assert np.allclose(kp[:, 2], kp0[:, 2])  # heights are kept
    assert np.allclose(kp[:, :2].mean(axis=0) - [2.0, -3.0], -kp0[:, :2].mean(axis=0), atol=1e-9)


def test_job_size_counts_the_longest_list_and_the_instance_file():
    s = spec_mod.normalize_spec(spec_of([FRONT, BACK]))
    one = spec_mod.normalize_spec(spec_of([FRONT]))
    assert spec_mod.job_size(s)["images"] == 2
    assert spec_mod.job_size(s)["files_per_image"] == spec_mod.job_size(one)["files_per_image"] + 1


@pytest.mark.blender
def test_placed_peoples_keypoints_within_half_a_pixel_of_markers_at_blenders_joints(blender, tmp_path):
    """Three people turned and moved on the floor, two frames (one holds its pose): each Person's
    keypoints, projected, against markers at the joints of Blender's own posed armatures."""
    out = tmp_path / "people_markers.json"
    blender("people_markers.py", out)
    rows = json.loads(out.read_text())
    assert len(rows) == 2 * 3 * 21 and {r["person"] for r in rows} == {0, 1, 2}
    errors = []
    for r in rows:
        assert r["found"] is not None, f"marker {r['marker']} of person {r['person']} not seen (frame {r['frame']})"
        errors.append(np.hypot(*np.subtract(r["found"], r["ours"])))
    assert max(errors) <= 0.5, f"worst keypoint error {max(errors):.3f} px"


@pytest.mark.blender
def test_a_prop_is_no_person_in_the_instance_map_and_hides_one_persons_knee(tmp_path):
    """Two people side by side and a box just in front of person 1's left knee: the box's pixels
    (its label in parts/) are 0 in instance/, person 1's left knee is hidden (kept in our field) and
    person 0's is seen."""
    trimesh = pytest.importorskip("trimesh")
    from pose_factory.mesh import props
    from pose_factory.render import render_batch
    from pose_factory.storage import LocalStorage

    l_knee = op.BODY_NAMES.index("l_knee")
    body_ = mq.build()
    place = {"position": [0.5, 0.0], "facing": 0.0}
    knee = mq.posed_keypoints(body_, poses.placed(poses.pose_body(body_, "a_pose"), place))[l_knee]
    trimesh.creation.box(extents=(0.25, 0.25, 0.1)).export(tmp_path / "box.glb")
    store = LocalStorage(tmp_path / "store")
    raw = {"project": "people", "render": {"width": W, "height": H, "passes": ["keypoints", "depth16", "seg"]},
           "cameras": CAMERA, "props": [{"mesh": str(tmp_path / "box.glb"), "location": (knee + [0, -0.35, 0]).tolist()}],
           "subjects": [{"poses": ["a_pose"], "place": {"position": [-0.5, 0.0], "facing": 0}},
                        {"poses": ["a_pose"], "place": place}]}
    manifest, _ = render_batch(props.resolve(raw, store, "people"), store)
    frame = load(store, tmp_path / "store", manifest)[0]
    folder = tmp_path / "store" / batch_prefix(manifest["project"], manifest["batch_id"])
    parts = read_png(str(folder / manifest["entries"][0]["files"]["parts"]["key"]))
    box = parts == props.label(0)
    assert box.sum() > 100 and (frame["instance"][box] == 0).all()
    assert set(np.unique(frame["instance"][parts > 0])) == {0, 1, 2}
    p0, p1 = frame["kp"]["people"]
    assert body(p0)[l_knee, 2] == 1 and body(p1)[l_knee, 2] == 0 and body(p1, "covered")[l_knee, 2] == 1


def test_joined_frame_lists_people_in_order_and_draws_every_one():
    """join_frames keeps each person's entry in order; draw_pose draws them all, as drawing one
    person over the other's image does (the annotator's order)."""
    rng = np.random.default_rng(3)

    def person(dx):
        xy = rng.uniform(20, 100, (18, 2)) + [dx, 0]
        vis = np.ones(18, bool)
        return op.pose_keypoint_frame((xy, vis, vis, np.full(18, 3.0)), None, None, None, 256, 128)

    a, b = person(0), person(120)
    both = op.join_frames([a, b])
    assert both["people"] == a["people"] + b["people"]
    drawn = op.draw_pose(both)
    assert (drawn == op.draw_pose(b, canvas=op.draw_pose(a))).all()
    assert (drawn[:, 128:] > 0).any() and (drawn[:, :100] > 0).any()
    with pytest.raises(ValueError, match="canvas"):
        op.join_frames([a, op.pose_keypoint_frame((np.zeros((18, 2)), np.zeros(18, bool)), None, None, None, 64, 64)])


@pytest.mark.blender
def test_a_person_out_of_the_frame_keeps_its_entry_with_every_point_zero(tmp_path):
    from pose_factory.render import render_batch

    store = LocalStorage(tmp_path)
    far = {"poses": ["a_pose"], "place": {"position": [30.0, 0.0], "facing": 0}}
    manifest, _ = render_batch(spec_of([{"poses": ["waving"]}, far]), store)
    frame = load(store, tmp_path, manifest)[0]
    near, gone = frame["kp"]["people"]
    assert body(near)[:, 2].sum() >= 12
    for key in op.PART_KEYS:
        assert not any(gone[key]), key
    assert set(np.unique(frame["instance"])) == {0, 1}
