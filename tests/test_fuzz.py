"""A seeded, bounded fuzz of what users and buckets hand the pack (issue 10): a few thousand
mutated specs, project names, storage keys, view/frame selections, config overrides, manifests
(as objects and as stored bytes), worker job inputs and route bodies. Every outcome must be a
success or the pack's own error type whose message names the field (or key, or file) and stays
short — never another exception type. Deterministic: the seed fixes every case."""
from __future__ import annotations

import copy
import json
import random

import pytest

from pose_factory import loading, settings as settings_mod, spec as spec_mod
from pose_factory import manifest as M
from pose_factory import storage as S
from pose_factory.errors import ManifestError, SpecError, StorageError
from tests.s3_support import camera

SEED = 20261130
MAX_MESSAGE = 5000


def deep(n: int):
    x: list = []
    for _ in range(n):
        x = [x]
    return x


def odd_values(rng: random.Random):
    """Values a hostile or careless sender puts anywhere."""
    return rng.choice([
        None, True, False, 0, -1, 1, 7, 64, 2048, 2 ** 31, -2 ** 63, 10 ** 400, -(10 ** 400), 0.5, -0.0, 1e308,
        float("inf"), float("-inf"), float("nan"), "", "a", "auto", "orbit", "list", "a_pose", "con", "../x",
        "a\0b", "\u202e\u0000", "é" * 3, "x" * rng.choice([70, 5000, 200_000]), [], [1], [None] * 70, {}, {"a": 1},
        {"x" * 300: 1}, deep(rng.choice([3, 50, 300])), [0.0, 0.0], [1, 2, 3], {"views": [0, 1]},
    ])


def mutate(obj, rng: random.Random, n: int):
    """n random edits at random places: replace a value, drop a key, add an unknown key, wrap a
    value in a list, or swap two list items."""
    obj = copy.deepcopy(obj)
    for _ in range(n):
        path, node = [], obj
        while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            path.append((node, key))
            node = node[key]
        if not path:
            if isinstance(obj, dict):
                obj[rng.choice(["x", "Subjects", "render", "k" * 500])] = odd_values(rng)
            continue
        parent, key = path[-1]
        op = rng.randrange(5)
        if op == 0 or op == 4 and not isinstance(parent, list):
            parent[key] = odd_values(rng)
        elif op == 1 and isinstance(parent, dict):
            del parent[key]
        elif op == 2 and isinstance(parent, dict):
            parent[rng.choice(["extra", "viewz", "y" * 1000, "poses", "type"])] = odd_values(rng)
        elif op == 3:
            parent[key] = [parent[key]]
        elif isinstance(parent, list) and len(parent) > 1:
            i, j = rng.randrange(len(parent)), rng.randrange(len(parent))
            parent[i], parent[j] = parent[j], parent[i]
        else:
            parent[key] = odd_values(rng)
    return obj


def outcome(fn, *args, own=(), names=None):
    """'ok', or the name of the pack's error fn raised, after checking its message."""
    try:
        fn(*args)
        return "ok"
    except own as e:
        text = str(e)
        assert text and len(text) <= MAX_MESSAGE, (type(e).__name__, text[:300])
        if names is not None:
            assert names(e), (type(e).__name__, text[:300])
        return type(e).__name__


def field_of(e) -> bool:
    """The error names where: a field path (SpecError, ManifestError) or a leading 'what:'."""
    field = getattr(e, "field", None)
    if field is not None:
        return bool(field) and str(e).startswith(field)
    head = str(e).split(":", 1)[0]
    return ":" in str(e) and 0 < len(head) <= 300


SPEC = {
    "schema_version": "1.0", "kind": "pose_batch", "project": "fuzz",
    "render": {"width": 64, "height": 64, "passes": ["openpose", "depth"], "shaded_samples": 1,
               "openpose": {"hands": True, "face": False}, "depth_range": "batch", "device": "auto"},
    "cameras": {"type": "list", "cameras": [{"location": [0.0, -3.0, 1.0], "look_at": [0.0, 0.0, 1.0],
                                             "focal_length": 50.0, "shift": [0.0, 0.0]}]},
    "subjects": [{"type": "mannequin", "height": 1.75, "build": "average",
                  "poses": ["a_pose", {"preset": "waving", "hands": "open", "mirror": True,
                                       "joints": {"l_elbow": {"flex": 90}}}]}],
}
ORBIT = dict(SPEC, cameras={"type": "orbit", "views": 4, "elevation": 10.0, "distance": "auto", "margin": 0.1})


def test_fuzz_specs_names_keys_and_selections():
    rng = random.Random(SEED)
    seen = {}
    for i in range(2000):
        raw = mutate(SPEC if i % 2 else ORBIT, rng, rng.randint(1, 3))
        result = outcome(lambda r=raw: spec_mod.batch_id(spec_mod.normalize_spec(r)), own=SpecError, names=field_of)
        seen[result] = seen.get(result, 0) + 1
    assert seen.get("ok", 0) > 50 and seen.get("SpecError", 0) > 1000  # both paths were taken

    alphabet = "abcXYZ019-_ ./\\\0é\u202e:con"
    for i in range(1000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 3, 8, 64, 65, 3000])))
        if i % 7 == 0:
            name = rng.choice(["con", "nul", "aux", "com1", "lpt9", "prn"]) + rng.choice(["", "1", "-x"])
        outcome(spec_mod.validate_project_name, name, own=SpecError, names=field_of)
        if outcome(spec_mod.sanitize_project_name, name, own=SpecError, names=field_of) == "ok":
            spec_mod.validate_project_name(spec_mod.sanitize_project_name(name))
        key = "/".join(rng.choice(["a", "..", ".", "", "b.png", "C:", "x" * 400, "\0"]) for _ in range(rng.randint(1, 4)))
        outcome(S.validate_key, key, own=StorageError, names=lambda e: "storage key" in str(e))
        outcome(S.batch_prefix, name or "p", rng.choice(["0123456789abcdef", name, "0" * 5000]),
                own=(SpecError, StorageError), names=field_of)

    for _ in range(500):
        text = rng.choice(["all", "", "0,2", "3-1", "0-" + "9" * 5000, "9" * 40, "-1", "1,,2", "a", "0-3,x" * 1000,
                           10 ** 400, None, 2, [0]])
        outcome(loading.parse_indices, text, 4, "views", own=SpecError, names=field_of)


def test_fuzz_config_overrides():
    rng = random.Random(SEED + 1)
    for _ in range(500):
        over = mutate(settings_mod.DEFAULTS, rng, rng.randint(1, 3))
        outcome(settings_mod.load_settings, None, over,
                own=settings_mod.SettingsError, names=lambda e: str(e).startswith("config "))


def manifest():
    entries = [{"view": v, "frame": f, "files": {"openpose": {"key": M.image_key("openpose", v, f),
                                                               "sha256": "ab" * 32, "size": 10}}}
               for f in range(2) for v in range(2)]
    return M.build_manifest(batch_id="0123456789abcdef", project="fuzz", spec={}, recipe_version=2,
                            worker_version="t", blender_version="t", width=64, height=64,
                            views=[camera(0), camera(1)], frames=2, entries=entries)


def test_fuzz_manifests_as_objects_and_stored_bytes(tmp_path):
    rng = random.Random(SEED + 2)
    base = manifest()
    results = set()
    for _ in range(1000):
        results.add(outcome(M.validate_manifest, mutate(base, rng, rng.randint(1, 3)), own=ManifestError,
                            names=field_of))
    assert results == {"ok", "ManifestError"}

    store = S.LocalStorage(tmp_path)
    good = json.dumps(base).encode()
    key = S.manifest_key("fuzz", base["batch_id"])
    for _ in range(400):
        data = bytearray(good)
        op = rng.randrange(5)
        if op == 0:  # flipped bytes (bit rot, a bad writer)
            for _ in range(rng.randint(1, 5)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1:  # cut short (a killed upload)
            data = data[:rng.randrange(len(data))]
        elif op == 2:  # a huge number where a small one was
            data = data.replace(b'"frames": 2', b'"frames": ' + b"9" * rng.choice([30, 400, 5000]))
        elif op == 3:  # nested past the parser's recursion
            n = rng.choice([10, 100_000])
            data = data.replace(b'"cost": {}', b'"cost": ' + b"[" * n + b"]" * n)
        else:  # not UTF-8
            data = data.replace(b"fuzz", b"f\xffzz", 1)
        store.put_bytes(key, bytes(data))
        outcome(S.read_manifest, store, "fuzz", base["batch_id"], own=ManifestError, names=field_of)


def test_fuzz_worker_inputs_and_route_bodies(tmp_path):
    from pod_worker.request import InputError, parse_input

    rng = random.Random(SEED + 3)
    for i in range(600):
        body = {"spec": mutate(SPEC if i % 2 else ORBIT, rng, rng.randint(0, 2)), "project": "fuzz",
                "force": False, "shard": {"views": [0, 1]}}
        body = mutate(body, rng, rng.randint(1, 2)) if i % 3 else body
        if i % 50 == 0:
            body = odd_values(rng)
        outcome(parse_input, body, own=InputError, names=lambda e: str(e).startswith(("input", "PROJECT_NAME")))

    routes = pytest.importorskip("nodes.routes")  # the ComfyUI side: needs the pack's nodes package
    settings = settings_mod.load_settings(overrides={"storage": {"local_root": str(tmp_path / "store"),
                                                                 "cache_root": str(tmp_path / "cache")}})
    store = S.LocalStorage(tmp_path / "store")
    for _ in range(150):
        body = rng.choice([None, {}, {"project": odd_values(rng)}, {"project": "fuzz"}, {"projekt": "a"},
                           odd_values(rng), {"project": "con"}])
        outcome(routes.refresh, settings, store, body, own=routes.RouteError, names=field_of)
        outcome(routes.get_manifest, settings, store, odd_values(rng), odd_values(rng), own=routes.RouteError,
                names=field_of)
