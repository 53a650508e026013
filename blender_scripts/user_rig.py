"""A user's rig in Blender: imported by Blender's own importers, measured, and posed with our poses
(pose_factory.rigs.retarget does the numbers; this file reads the rest bones and sets the posed ones).

    load_rig(path, fmt, bone_map, height) -> LoadedRig   import + checks + bone map + retarget
    RigPerson(scene, subject, path, index)               the Person interface (blender_scripts/people.py)

Untrusted files: a .blend is appended (its objects only), never opened, and Python never runs:
auto-run of scripts is off, and every imported object's drivers, animation and constraints are
removed. The worker lets Blender import each rig once in a child with a time limit first
(blender_scripts/inspect_rig.py, run by pose_factory.rigs.prepare_files).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import bpy
import bmesh  # after bpy: Blender's modules come with it
import numpy as np
from mathutils import Matrix

from blender_scripts import scene as S
from pose_factory.errors import SpecError
from pose_factory.render import mannequin as mq
from pose_factory.render import poses
from pose_factory.rigs import bonemap, files, retarget

READ_ALLOWED = "a rigged humanoid in FBX, GLB/glTF, VRM or .blend that Blender's importers read"


def _first_error(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]


def import_file(path: str, fmt: str) -> list:
    """The objects Blender's own importer brings from the file into the current scene."""
    bpy.context.preferences.filepaths.use_scripts_auto_execute = False
    before = set(bpy.data.objects)
    scene = bpy.context.scene
    try:
        if fmt == "fbx":
            bpy.ops.import_scene.fbx(filepath=path)
        elif fmt in ("glb", "gltf", "vrm"):  # the glTF importer reads a .vrm's GLB bytes as they are
            bpy.ops.import_scene.gltf(filepath=path, disable_bone_shape=True)
        elif fmt == "blend":  # appended, never opened: its scripts do not run
            with bpy.data.libraries.load(path, link=False) as (src, dst):
                dst.objects = list(src.objects)
            for ob in dst.objects:
                if ob is not None and ob.name not in scene.collection.objects:
                    scene.collection.objects.link(ob)
        else:
            raise SpecError("rig", f"a .{fmt} file", "one of " + ", ".join("." + f for f in files.RIG_FORMATS))
    except SpecError:
        raise
    except Exception as e:  # the importers raise RuntimeError (and others) on a broken file
        raise SpecError("rig", f"Blender could not read the {fmt.upper()} file ({_first_error(e)})", READ_ALLOWED) from None
    return [o for o in bpy.data.objects if o not in before]


def _ancestors(ob) -> list:
    out = []
    while ob.parent is not None:
        ob = ob.parent
        out.append(ob)
    return out


def _skinned_to(ob, arm) -> bool:
    return any(m.type == "ARMATURE" and m.object == arm for m in ob.modifiers) or arm in _ancestors(ob)


def _clear_animation() -> None:
    """Every datablock's drivers and actions removed (objects, meshes, shape keys, armatures,
    materials and their node trees, node groups, ...): nothing of the file is evaluated as Python,
    even where a later preference allowed scripts, and nothing animates."""
    for name in dir(bpy.data):
        coll = getattr(bpy.data, name, None)
        if not isinstance(coll, bpy.types.bpy_prop_collection):
            continue
        for idb in coll:
            for owner in (idb, getattr(idb, "node_tree", None)):
                if getattr(owner, "animation_data", None) is not None:
                    owner.animation_data_clear()


def _make_safe(objects) -> None:
    """No Python and no animation from the file: drivers, actions and constraints removed."""
    _clear_animation()
    for ob in objects:
        for c in list(ob.constraints):
            ob.constraints.remove(c)
        if ob.type == "ARMATURE":
            for pb in ob.pose.bones:
                for c in list(pb.constraints):
                    pb.constraints.remove(c)
                pb.matrix_basis = Matrix.Identity(4)
            for b in ob.data.bones:  # set_pose's arithmetic: each bone takes its parent's whole transform
                b.inherit_scale = "FULL"
                b.use_inherit_rotation = True
                b.use_local_location = True
            ob.data.pose_position = "POSE"


@dataclass
class LoadedRig:
    arm: object
    meshes: list
    rest: retarget.RigRest
    rt: retarget.Retarget
    used: object
    unmapped: list
    world0: np.ndarray  # the armature object's world matrix
    rest_local: np.ndarray  # (B, 4, 4) the bones' rest matrices in the armature's space


def _measure(arm, meshes) -> retarget.RigRest:
    w0 = np.array(arm.matrix_world)
    bones = list(arm.data.bones)
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in bones], int)
    mats = np.array([w0 @ np.array(b.matrix_local) for b in bones]).reshape(-1, 4, 4)
    tails = np.array([(w0 @ np.append(np.array(b.tail_local), 1.0))[:3] for b in bones]).reshape(-1, 3)
    verts, owner, tris = [], [], 0
    for ob in meshes:
        me = ob.data
        n = len(me.vertices)
        co = np.empty(n * 3)
        me.vertices.foreach_get("co", co)
        mw = np.array(ob.matrix_world)
        verts.append(co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3])
        owner.append(_dominant_bones(ob, index, n))
        me.calc_loop_triangles()
        tris += len(me.loop_triangles)
    v = np.concatenate(verts) if verts else np.zeros((0, 3))
    return retarget.RigRest(names, parents, mats, tails, v, np.concatenate(owner) if owner else np.zeros(0, int), tris)


def _dominant_bones(ob, index: dict, n: int) -> np.ndarray:
    """Each vertex's bone of largest weight (-1: none); a mesh parented to a bone: that bone."""
    out = np.full(n, -1, int)
    best = np.zeros(n)
    group_bone = {g.index: index[g.name] for g in ob.vertex_groups if g.name in index}
    if group_bone:
        for v in ob.data.vertices:
            for g in v.groups:
                b = group_bone.get(g.group)
                if b is not None and g.weight > best[v.index]:
                    best[v.index], out[v.index] = g.weight, b
    if ob.parent_type == "BONE" and ob.parent_bone in index:
        out[out < 0] = index[ob.parent_bone]
    return out


def mesh_triangles(meshes) -> np.ndarray:
    """(T, 3) vertex indices of the meshes' triangles, the meshes' vertices numbered one after
    another in their order (as the measured rest's vertices are)."""
    tris, base = [np.zeros((0, 3), np.int64)], 0
    for ob in meshes:
        me = ob.data
        me.calc_loop_triangles()
        t = np.empty(len(me.loop_triangles) * 3, np.int64)
        me.loop_triangles.foreach_get("vertices", t)
        tris.append(t.reshape(-1, 3) + base)
        base += len(me.vertices)
    return np.concatenate(tris)


def _eye_points(meshes, rest: retarget.RigRest, rt: retarget.Retarget) -> dict:
    """Each mapped eye's point on the face: the last surface a ray from the eye bone's head (the
    eyeball's centre) forward crosses within a tenth of the rig's height (the eye's front)."""
    from mathutils.bvhtree import BVHTree

    keys = [k for k in ("l_eye", "r_eye") if k in rt.bone]
    if not keys:
        return {}
    tree = BVHTree.FromPolygons(rest.vertices.tolist(), mesh_triangles(meshes).tolist())
    fwd = rt.forward()
    reach = 0.1 * rt.rest_height
    out = {}
    for k in keys:
        start = rest.matrices[rt.bone[k], :3, 3]
        origin, last = start.copy(), None
        while True:
            loc, _, _, dist = tree.ray_cast(origin.tolist(), fwd.tolist(), reach - float((origin - start) @ fwd))
            if loc is None:
                break
            last = np.array(loc)
            origin = last + fwd * 1e-6
        if last is not None:
            out[k] = last
    return out


def load_rig(path: str, fmt: str, bone_map="auto", height="auto") -> LoadedRig:
    """Imports a rig file into the current scene and makes it ready to pose; SpecError for a file
    Blender cannot read, one without an armature, without a skinned mesh, or without a humanoid
    a bone map finds (its hips and both thighs)."""
    with open(path, "rb") as fh:
        data = fh.read()
    gltf = files.check_bytes(data, fmt)
    del data
    new = import_file(path, fmt)
    arms = [o for o in new if o.type == "ARMATURE"]
    if not arms:
        raise SpecError("rig", "the file has no armature (nothing to pose)",
                        "a rigged humanoid: an armature and the meshes skinned to it")
    arm = max(arms, key=lambda o: len(o.data.bones))
    meshes = [o for o in new if o.type == "MESH" and _skinned_to(o, arm)]
    if not meshes:
        raise SpecError("rig", f"the armature {arm.name!r} has no mesh skinned to it (nothing to render)",
                        "a rigged humanoid: an armature and the meshes skinned to it")
    keep = {arm, *meshes, *_ancestors(arm), *(a for m in meshes for a in _ancestors(m))}
    for ob in new:
        if ob not in keep:
            bpy.data.objects.remove(ob, do_unlink=True)
    _make_safe([arm, *meshes])
    bpy.context.view_layer.update()
    rest = _measure(arm, meshes)
    used, found, unmapped = bonemap.map_bones(rest.names, bone_map, gltf)
    rt = retarget.Retarget(rest, found, height)
    rt.set_eye_points(_eye_points(meshes, rest, rt))
    return LoadedRig(arm, meshes, rest, rt, used if isinstance(bone_map, str) else bone_map, unmapped,
                     np.array(arm.matrix_world), np.array([np.array(b.matrix_local) for b in arm.data.bones]))


def set_pose(lr: LoadedRig, world: np.ndarray) -> None:
    """Sets every bone so that its world matrix is world[b] (as scene.Rig.pose does for the mannequin)."""
    inv_w0 = np.linalg.inv(lr.world0)
    rest_local = lr.rest_local
    pose_arm = np.einsum("ij,bjk->bik", inv_w0, world)
    for b in lr.rt.order:
        p = lr.rest.parents[b]
        if p < 0:
            basis = np.linalg.inv(rest_local[b]) @ pose_arm[b]
        else:
            rel = np.linalg.inv(rest_local[p]) @ rest_local[b]
            basis = np.linalg.inv(rel) @ np.linalg.inv(pose_arm[p]) @ pose_arm[b]
        pb = lr.arm.pose.bones[lr.rest.names[b]]
        pb.rotation_mode = "QUATERNION"
        pb.matrix_basis = Matrix(basis.tolist())
    bpy.context.view_layer.update()


def posed_world(lr: LoadedRig) -> np.ndarray:
    """(B, 4, 4) world matrices of the posed bones, read back from Blender."""
    w = np.array(lr.arm.matrix_world)
    return np.array([w @ np.array(lr.arm.pose.bones[n].matrix) for n in lr.rest.names])


def deformed_vertices(meshes) -> np.ndarray:
    """World vertices of the meshes as Blender deforms them now."""
    dg = bpy.context.evaluated_depsgraph_get()
    out = []
    for ob in meshes:
        ev = ob.evaluated_get(dg)
        me = ev.to_mesh()
        co = np.empty(len(me.vertices) * 3)
        me.vertices.foreach_get("co", co)
        mw = np.array(ev.matrix_world)
        out.append(co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3])
        ev.to_mesh_clear()
    return np.concatenate(out)


def place_matrix(place: dict | None) -> np.ndarray:
    """The subject's place: turned about z by facing (degrees), then moved to position [x, y]."""
    m = np.eye(4)
    if place:
        a = np.radians(place["facing"])
        m[:3, :3] = [[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]]
        m[:2, 3] = place["position"]
    return m


def part_split(ob, vertex_label: np.ndarray) -> list:
    """The mesh object split into one object per part label (each face to the label most of its
    vertices have), each object's pass_index its label."""
    me = ob.data
    counts = np.array([np.bincount(vertex_label[list(p.vertices)], minlength=len(mq.PARTS) + 1) for p in me.polygons])
    face_label = counts.argmax(1) if len(counts) else np.zeros(0, int)
    labels = np.unique(face_label)
    if len(labels) <= 1:
        ob.pass_index = int(labels[0]) if len(labels) else mq.PART_LABEL["chest"]
        return [ob]
    out = []
    for lab in labels:
        new = ob.copy()
        new.data = me.copy()
        new.name = f"{ob.name}.{mq.PARTS[lab - 1]}"
        for coll in ob.users_collection:
            coll.objects.link(new)
        bm = bmesh.new()
        bm.from_mesh(new.data)
        bm.faces.ensure_lookup_table()
        bmesh.ops.delete(bm, geom=[f for f in bm.faces if face_label[f.index] != lab], context="FACES")
        bm.to_mesh(new.data)
        bm.free()
        new.pass_index = int(lab)
        out.append(new)
    bpy.data.objects.remove(ob, do_unlink=True)
    if me.users == 0:  # another object may share the mesh
        bpy.data.meshes.remove(me)
    return out


class RigPerson:
    """A rig subject as a Person (blender_scripts/people.py): its meshes in clay, split by part,
    posed frame by frame with our poses, keypoints read from Blender's posed bones."""

    def __init__(self, scene, subject: dict, path: str, index: int):
        self.index, self.subject = index, subject
        fmt = subject["rig"]["format"]
        self.rig = load_rig(path, fmt, subject.get("bone_map", "auto"), subject.get("height", "auto"))
        rt = self.rig.rt
        self.report = rt.report(f"{subject['rig']['sha256'][:12]}.{fmt}", fmt, self.rig.used, self.rig.unmapped)
        clay = S.clay_material()
        bone_label = rt.part_labels()
        heads = self.rig.rest.matrices[:, :3, 3]
        self.objects, start = [], 0
        for ob in self.rig.meshes:
            n = len(ob.data.vertices)
            owner = self.rig.rest.vertex_bone[start:start + n].copy()
            verts = self.rig.rest.vertices[start:start + n]
            start += n
            lost = owner < 0  # no weight: the nearest bone's head
            if lost.any():
                owner[lost] = np.linalg.norm(verts[lost, None] - heads[None], axis=2).argmin(1)
            for slot in ob.material_slots:  # a material linked to the object would cover the mesh's
                slot.link = "DATA"
            ob.data.materials.clear()
            ob.data.materials.append(clay)
            self.objects += part_split(ob, bone_label[owner])
        self.rig.meshes = list(self.objects)
        radius, self.own_parts = mq.visibility_rules()
        self.radius = radius * rt.size_ratio()
        self.place = place_matrix(subject.get("place"))
        self.current = None

    def pose(self, f: int) -> None:
        if self.current == f:
            return
        mats, grounded = self.rig.rt.pose(poses.frame_entry(self.subject["poses"], f))
        world = np.einsum("ij,bjk->bik", self.place, mats)
        set_pose(self.rig, world)
        if grounded:  # the lowest deformed vertex on the floor, as the mannequin's
            world[:, 2, 3] -= deformed_vertices(self.objects)[:, 2].min()
            set_pose(self.rig, world)
        self.current = f

    def keypoints(self, f: int) -> np.ndarray:
        self.pose(f)
        return self.rig.rt.keypoints(posed_world(self.rig))

    def estimated(self) -> np.ndarray:
        return self.rig.rt.estimated()

    def framing_vertices(self, f: int) -> np.ndarray:
        self.pose(f)
        return deformed_vertices(self.objects)

    def root(self, f: int) -> np.ndarray:
        self.pose(f)
        return posed_world(self.rig)[self.rig.rt.bone["root"], :3, 3]


def inspect(path: str, fmt: str, bone_map="auto", height="auto", name: str | None = None) -> dict:
    """The rig report of a file, imported into an empty scene (inspect_rig.py runs it in a child)."""
    S.reset()
    lr = load_rig(path, fmt, bone_map, height)
    return lr.rt.report(name or os.path.basename(path), fmt, lr.used, lr.unmapped)

