"""Storage layout, the local-folder backend and batch writing (pose_factory/storage/__init__.py)."""
import hashlib
import json
import os

import pytest

from pose_factory import manifest as M
from pose_factory import storage as S
from pose_factory.errors import ManifestError, StorageError, SpecError

BID = "0123456789abcdef"
CAM = {"index": 0, "name": "v00", "location": [0.0, -3.0, 1.0], "rotation": [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
       "world_to_camera": [[1, 0, 0, 0], [0, 0, -1, 1], [0, 1, 0, 3], [0, 0, 0, 1]],
       "intrinsics": {"fx": 100.0, "fy": 100.0, "cx": 31.5, "cy": 31.5, "width": 64, "height": 64,
                      "orthographic": False, "ortho_scale": "auto"}}


def files_on_disk(root):
    return sorted(os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/")
                  for d, _, names in os.walk(root) for n in names)


def manifest_for(files, frames=2, project="p"):
    entries = [{"view": 0, "frame": f, "files": files[f]} for f in range(frames)]
    return M.build_manifest(batch_id=BID, project=project, spec={}, recipe_version=1, worker_version="t",
                            blender_version="t", width=64, height=64, views=[CAM], frames=frames, entries=entries)


def write_batch(store, project="p", frames=2):
    w = S.BatchWriter(store, project, BID)
    files = [{"openpose": w.add_file(M.image_key("openpose", 0, f), f"png {f}".encode()),
              "keypoints": w.add_file(M.image_key("keypoints", 0, f, "json"), b"{}")} for f in range(frames)]
    return w, manifest_for(files, frames, project)


# --- layout and keys ------------------------------------------------------------------------------
def test_layout():
    assert S.batch_prefix("proj", BID) == f"projects/proj/batches/{BID}/"
    assert S.manifest_key("proj", BID) == f"projects/proj/batches/{BID}/manifest.json"
    with pytest.raises(SpecError):
        S.batch_prefix("../x", BID)
    with pytest.raises(StorageError):
        S.batch_prefix("proj", "../../etc")


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", "a\\b",
                                 "a\0b", "C:/x", "..", None])
def test_unsafe_keys_refused(key, tmp_path):
    with pytest.raises(StorageError) as info:
        S.validate_key(key)
    assert repr(key) in str(info.value)  # the error names the key
    store = S.LocalStorage(tmp_path / "root")
    with pytest.raises(StorageError):
        store.put_bytes(key, b"x")
    assert files_on_disk(tmp_path) == []


def test_symlink_out_of_root_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store = S.LocalStorage(tmp_path / "root")
    os.symlink(outside, tmp_path / "root" / "link")
    with pytest.raises(StorageError, match="outside the storage root"):
        store.put_bytes("link/x.png", b"x")
    assert list(outside.iterdir()) == []


# --- the local backend ----------------------------------------------------------------------------
def test_put_get_list_exists(tmp_path):
    store = S.LocalStorage(tmp_path)
    assert isinstance(store, S.Storage)
    store.put_bytes("projects/a/x.json", b"1")
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 << 20))  # several copy chunks
    store.put_file("projects/a/b/big.bin", src)
    store.put_bytes("projects/ab/y", b"2")
    assert store.get_bytes("projects/a/b/big.bin") == src.read_bytes()
    assert store.exists("projects/a/x.json") and not store.exists("projects/a/nope")
    assert store.list("projects/a/") == ["projects/a/b/big.bin", "projects/a/x.json"]
    assert store.list("projects/a") == ["projects/a/b/big.bin", "projects/a/x.json", "projects/ab/y"]  # as S3
    assert store.list("nothing/") == []
    assert store.local_path("projects/a/x.json") == tmp_path.resolve() / "projects/a/x.json"
    assert store.local_path("projects/a/") == tmp_path.resolve() / "projects/a"
    with pytest.raises(StorageError, match="no such key"):
        store.get_bytes("projects/a/nope")
    store.delete("projects/ab/y")
    store.delete("projects/ab/y")  # deleting what is gone is fine
    assert not store.exists("projects/ab/y")


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path):
    store = S.LocalStorage(tmp_path)
    for i in range(3):
        store.put_bytes("k/f.png", b"v%d" % i)
    assert store.get_bytes("k/f.png") == b"v2"
    assert files_on_disk(tmp_path) == ["k/f.png"]
    assert oct(os.stat(tmp_path / "k/f.png").st_mode & 0o777) == oct(0o644)


def test_failing_write_leaves_no_partial_file(tmp_path, monkeypatch):
    store = S.LocalStorage(tmp_path)
    store.put_bytes("k/old.png", b"old")

    class Boom(Exception):
        pass

    def broken_replace(src, dst):
        raise Boom()

    monkeypatch.setattr(S.os, "replace", broken_replace)
    with pytest.raises(Boom):
        store.put_bytes("k/new.png", b"new")
    with pytest.raises(Boom):
        store.put_bytes("k/old.png", b"changed")
    monkeypatch.undo()
    assert files_on_disk(tmp_path) == ["k/old.png"]  # no temp file, no partial new.png
    assert store.get_bytes("k/old.png") == b"old"  # the old content survives


def test_source_failing_mid_copy_leaves_no_file(tmp_path):
    store = S.LocalStorage(tmp_path / "root")
    with pytest.raises(OSError):
        store.put_file("k/x.png", tmp_path / "missing.png")
    assert files_on_disk(tmp_path / "root") == []


def test_list_hides_files_being_written(tmp_path):
    store = S.LocalStorage(tmp_path)
    store.put_bytes("k/a.png", b"a")
    (tmp_path / "k" / ".tmp-abc").write_bytes(b"partial")  # another process mid-write
    assert store.list("") == ["k/a.png"]


# --- batches --------------------------------------------------------------------------------------
class Recording(S.LocalStorage):
    """Records the order of writes."""

    def __init__(self, root):
        super().__init__(root)
        self.order = []

    def put_bytes(self, key, data):
        self.order.append(key)
        super().put_bytes(key, data)

    def put_file(self, key, src):
        self.order.append(key)
        super().put_file(key, src)


def test_batch_round_trip_and_manifest_last(tmp_path):
    store = Recording(tmp_path)
    w, m = write_batch(store)
    src = tmp_path / "depth.png"
    src.write_bytes(b"depth bytes")
    info = w.add_file("depth/v00_f0000.png", src)
    assert info == {"key": "depth/v00_f0000.png", "sha256": hashlib.sha256(b"depth bytes").hexdigest(), "size": 11}
    m["entries"][0]["files"]["depth"] = info
    assert S.read_manifest(store, "p", BID) is None  # not committed yet: incomplete
    w.commit(m)
    assert store.order[-1] == S.manifest_key("p", BID) and store.order.count(store.order[-1]) == 1
    assert S.read_manifest(store, "p", BID) == json.loads(json.dumps(m))
    assert S.list_batches(store, "p") == [BID]
    folder = store.local_path(S.batch_prefix("p", BID))
    assert (folder / "openpose/v00_f0001.png").read_bytes() == b"png 1"


def test_writer_failing_midway_leaves_no_manifest(tmp_path):
    store = S.LocalStorage(tmp_path)
    w = S.BatchWriter(store, "p", BID)
    w.add_file("openpose/v00_f0000.png", b"x")
    with pytest.raises(ManifestError):
        w.add_file("../manifest.json", b"{}")  # nothing but batch files through add_file
    # the writer dies here: files exist, no manifest, so the batch does not exist for readers
    assert store.list(S.batch_prefix("p", BID)) == [S.batch_prefix("p", BID) + "openpose/v00_f0000.png"]
    assert S.read_manifest(store, "p", BID) is None
    assert S.list_batches(store, "p") == []


def test_commit_refuses_missing_or_changed_files(tmp_path):
    store = S.LocalStorage(tmp_path)
    w, m = write_batch(store)
    m["entries"][1]["files"]["depth"] = {"key": "depth/v00_f0001.png", "sha256": "0" * 64, "size": 3}
    with pytest.raises(StorageError, match="never written"):
        w.commit(m)
    w, m = write_batch(store)
    m["entries"][0]["files"]["openpose"]["sha256"] = "f" * 64
    with pytest.raises(StorageError, match="sha256"):
        w.commit(m)
    assert not store.exists(S.manifest_key("p", BID))


def test_commit_accepts_files_written_by_another_writer(tmp_path):
    # shards upload their files; the client merges and commits the manifest
    store = S.LocalStorage(tmp_path)
    _, m = write_batch(store)
    S.BatchWriter(store, "p", BID).commit(m)
    assert S.read_manifest(store, "p", BID)["batch_id"] == BID
    store.put_bytes(S.batch_prefix("p", BID) + "openpose/v00_f0000.png", b"tampered")
    with pytest.raises(StorageError, match="sha256"):
        S.BatchWriter(store, "p", BID).commit(m)


def test_commit_refuses_other_batch_and_invalid_manifest(tmp_path):
    store = S.LocalStorage(tmp_path)
    w, m = write_batch(store)
    with pytest.raises(StorageError, match="this writer"):
        S.BatchWriter(store, "q", BID).commit(m)
    m["schema_version"] = "9.0"
    with pytest.raises(ManifestError):
        w.commit(m)
    assert S.list_batches(store, "p") == [] and S.list_batches(store, "q") == []


def test_rewrite_keeps_the_old_batch_until_the_new_manifest(tmp_path):
    store = S.LocalStorage(tmp_path)
    w, m = write_batch(store)
    w.commit(m)
    old_keys = {i["key"] for e in m["entries"] for i in e["files"].values()}
    old_bytes = {k: store.get_bytes(S.batch_prefix("p", BID) + k) for k in old_keys}
    w2 = S.BatchWriter(store, "p", BID)
    info = w2.add_file("openpose/v00_f0000.png", b"new")  # a forced re-render starts
    assert info["key"].startswith("gen-") and info["key"].endswith("/openpose/v00_f0000.png")
    assert S.read_manifest(store, "p", BID) == m  # the old batch is whole: manifest and files
    assert {k: store.get_bytes(S.batch_prefix("p", BID) + k) for k in old_keys} == old_bytes


def test_read_manifest_refuses_bad_stored_manifest(tmp_path):
    store = S.LocalStorage(tmp_path)
    key = S.manifest_key("p", BID)
    store.put_bytes(key, b"{broken")
    with pytest.raises(ManifestError, match="not valid JSON"):
        S.read_manifest(store, "p", BID)
    _, m = write_batch(store)
    m["schema_version"] = "2.0"
    store.put_bytes(key, json.dumps(m).encode())
    with pytest.raises(ManifestError, match="schema_version"):
        S.read_manifest(store, "p", BID)
    other = "fedcba9876543210"
    _, m = write_batch(store)
    store.put_bytes(S.manifest_key("p", other), json.dumps(m).encode())  # copied under the wrong id
    with pytest.raises(ManifestError, match="batch_id"):
        S.read_manifest(store, "p", other)


def test_list_batches_only_complete_ones(tmp_path):
    store = S.LocalStorage(tmp_path)
    w, m = write_batch(store)
    w.commit(m)
    store.put_bytes(f"projects/p/batches/{'a' * 16}/openpose/v00_f0000.png", b"x")  # incomplete
    store.put_bytes("projects/p/batches/notes.txt", b"x")
    assert S.list_batches(store, "p") == [BID]
    assert S.list_batches(store, "empty") == []
