"""Projects (pose_factory/storage/projects.py): the name rules, create/list/delete, and rename (copy,
verify, delete, journal) on the local-folder backend and on moto's S3 server through the fault
proxy, including a rename SIGKILLed half-way and finished by running it again."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pose_factory.storage import projects as P
from pose_factory import spec as S
from pose_factory.errors import SpecError
from pose_factory.storage import LocalStorage, list_batches, read_manifest
from tests.s3_support import (ACCESS_KEY, SECRET_KEY, bucket, moto_server, png_bytes, proxy, s3_storage, store,  # noqa: F401
                              write_batch)

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ["../x", "a/b", "..", "", "x" * 300, "CON", "con", "Nul", "lpt1", "ｄｅｆａｕｌｔ", "dеfault",  # Cyrillic е
           "a\0b", ".", "-a", "a b", "UPPER"]


# --- names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_refused_with_the_rule_and_the_slug(name):
    with pytest.raises(SpecError) as info:
        S.validate_project_name(name)
    msg = str(info.value)
    assert msg.startswith("project: got ") and "allowed: 1 to 64 characters: lowercase letters" in msg
    slug = S.project_slug(name)
    if slug:  # the error shows the slug it would use, and that slug is valid
        assert f"(as a project name: {slug!r})" in msg
        assert S.validate_project_name(slug) == slug


@pytest.mark.parametrize("text, slug", [("CON", "con-project"), ("ｄｅｆａｕｌｔ", "default"), ("../x", "x"),
                                        ("a/b", "a-b"), ("My Poses (v2)", "my-poses-v2"), ("x" * 300, "x" * 64),
                                        ("..", None), ("", None), ("a\0b", "a-b")])
def test_slugs(text, slug):
    assert S.project_slug(text) == slug


@pytest.mark.parametrize("name", ["con1", "console", "com10", "nul-set", "a", "x" * 64])
def test_names_near_reserved_ones_are_fine(name):
    assert S.validate_project_name(name) == name


# --- create, list, delete ----------------------------------------------------------------------------
@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "storage")
    return request.getfixturevalue("store")


def batch_files(n_views=2, n_frames=2, seed=0):
    return {(name, v, f): png_bytes(seed + 10 * v + f) for name in ("openpose", "depth")
            for v in range(n_views) for f in range(n_frames)}


def test_create_list_delete(storage):
    made = P.create(storage, "poses", "My Poses")
    assert made["display_name"] == "My Poses" and made["created_at"]
    assert json.loads(storage.get_bytes("projects/poses/project.json"))["display_name"] == "My Poses"
    with pytest.raises(P.ProjectError, match="already exists"):
        P.create(storage, "poses")
    with pytest.raises(SpecError):
        P.create(storage, "../poses")
    write_batch(storage, "poses", "0123456789abcdef", batch_files(), 2, 2)
    P.create(storage, "empty")
    rows = {r["name"]: r for r in P.list_projects(storage)}
    assert set(rows) == {"poses", "empty"}
    assert rows["poses"]["batches"] == 1 and rows["poses"]["objects"] == 10 and rows["poses"]["bytes"] > 0
    with pytest.raises(P.ProjectError, match="not empty"):
        P.delete(storage, "poses")
    assert P.delete(storage, "empty") == 1 and not P.exists(storage, "empty")
    assert P.delete(storage, "poses", force=True) == 10 and storage.list("projects/") == []
    with pytest.raises(P.ProjectNotFound):
        P.delete(storage, "poses")


# --- rename -----------------------------------------------------------------------------------------
def digests(storage, prefix):
    return {k[len(prefix):]: hashlib.sha256(storage.get_bytes(k)).hexdigest() for k in storage.list(prefix)}


def test_rename_moves_every_object_byte_identical(storage):
    P.create(storage, "old", "Old Name")
    ids = ["0123456789abcdef", "fedcba9876543210"]
    for i, bid in enumerate(ids):
        write_batch(storage, "old", bid, batch_files(seed=i * 100), 2, 2)
    before = digests(storage, "projects/old/")
    done = P.rename(storage, "old", "new")
    assert done == {"from": "old", "to": "new", "objects": len(before), "copied": len(before), "resumed": False}
    assert storage.list("projects/old/") == []
    if isinstance(storage, LocalStorage):  # no empty folder left behind
        assert sorted(p.name for p in (storage.root / "projects").iterdir()) == ["new"]
    assert digests(storage, "projects/new/") == before  # every object, byte for byte; no journal left
    assert list_batches(storage, "new") == sorted(ids)  # batch ids do not change
    assert read_manifest(storage, "new", ids[0])["batch_id"] == ids[0]
    assert P.info(storage, "new")["display_name"] == "Old Name"
    with pytest.raises(P.ProjectNotFound):
        P.rename(storage, "old", "other")
    P.create(storage, "taken")
    with pytest.raises(P.ProjectError, match="already exists"):
        P.rename(storage, "new", "taken")
    with pytest.raises(SpecError):
        P.rename(storage, "new", "../taken")


def test_rename_refuses_another_target_while_one_is_unfinished(tmp_path):
    storage = LocalStorage(tmp_path)
    write_batch(storage, "a", "0123456789abcdef", batch_files(), 2, 2)
    journal = {"version": 1, "from": "a", "to": "b", "phase": "copy", "started_at": "x",
               "objects": {k[len("projects/a/"):]: 1 for k in storage.list("projects/a/")}}
    storage.put_bytes("projects/a/" + P.JOURNAL, json.dumps(journal).encode())
    assert P.pending_rename(storage, "a") == "b"
    with pytest.raises(P.ProjectError, match="unfinished rename of 'a' to 'b'"):
        P.rename(storage, "a", "c")
    assert P.rename(storage, "a", "b")["resumed"] is True and storage.list("projects/a/") == []


def test_rename_sigkilled_half_way_is_finished_by_running_it_again(tmp_path, proxy, bucket, moto_server):  # noqa: F811
    """The CLI renames a 40-object project through the 40 ms proxy, one copy at a time; it is
    killed with SIGKILL once half the copies were made. Running the rename again finishes it:
    every object under the new name, byte-identical, none left under the old one."""
    storage = s3_storage(proxy.url, bucket)
    P.create(storage, "before")
    for i, bid in enumerate(["0123456789abcdef", "fedcba9876543210", "00112233445566ff", "ffeeddccbbaa0011"]):
        write_batch(storage, "before", bid, batch_files(seed=i * 100), 2, 2)  # 9 objects each
    originals = digests(storage, "projects/before/")
    assert len(originals) == 37
    meta = json.loads(storage.get_bytes("projects/before/project.json"))
    assert meta["display_name"] == "before"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({"storage": {"backend": "r2", "local_root": str(tmp_path / "st"),
                                           "cache_root": str(tmp_path / "data" / "raw")},
                               "sync": {"parallel_transfers": 1, "working_root": str(tmp_path / "data" / "w"),
                                        "archive_root": str(tmp_path / "data" / "a")}}))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLOUDFLARE_R2_", "POSE_FACTORY_")) or k == "POSE_FACTORY_POINTER_DIR"}  # conftest
    env.update(PYTHONPATH=str(ROOT), POSE_FACTORY_ENV_FILE=str(tmp_path / "none.env"),
               CLOUDFLARE_R2_ACCESS_KEY_ID=ACCESS_KEY, CLOUDFLARE_R2_SECRET_ACCESS_KEY=SECRET_KEY,
               POSE_FACTORY_R2_BUCKET=bucket, POSE_FACTORY_S3_ENDPOINT_URL=proxy.url)
    proxy.reset_counts()

    def copies():
        with proxy.lock:
            return sum(n for k, n in proxy.puts.items() if k.startswith(f"{bucket}/projects/after/"))

    proc = subprocess.Popen([sys.executable, "-m", "pose_factory", "--config", str(cfg), "projects", "rename",
                             "before", "after"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while copies() < len(originals) // 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    half = storage.list("projects/after/")
    assert 0 < len(half) < len(originals)  # killed half-way: some copies made, none deleted yet
    assert P.pending_rename(storage, "before") == "after"
    assert set(originals) <= {k[len("projects/before/"):] for k in storage.list("projects/before/")}

    again = subprocess.run([sys.executable, "-m", "pose_factory", "--config", str(cfg), "projects", "rename",
                            "before", "after", "--json"], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    out = json.loads(again.stdout)
    assert out["resumed"] is True and out["objects"] == len(originals)
    assert out["copied"] == len(originals) - len(half)  # the copies made before the kill are kept
    assert storage.list("projects/before/") == []
    after = digests(storage, "projects/after/")
    assert {k: v for k, v in after.items() if k != "project.json"} == \
        {k: v for k, v in originals.items() if k != "project.json"}
    # project.json too, but for its default display name, which follows the rename (issue 21.4)
    assert json.loads(storage.get_bytes("projects/after/project.json")) == dict(meta, display_name="after")


def test_copy_without_a_size_hint_and_a_multipart_object(tmp_path, proxy, bucket):  # noqa: F811
    """A multipart upload's ETag is no MD5 of the bytes ("…-2"): the rename verifies that copy by
    sha256. A copy without a size hint goes through the transfer manager."""
    import os as _os

    storage = s3_storage(proxy.url, bucket, multipart_threshold=5 << 20)
    big = tmp_path / "big.bin"
    big.write_bytes(_os.urandom(6 << 20))
    storage.put_file("projects/big/specs/big.bin", big)
    storage.put_bytes("projects/big/project.json", b"{}")
    assert "-" in storage.list_info("projects/big/")["projects/big/specs/big.bin"]["etag"]
    storage.copy("projects/big/project.json", "projects/big/copy.json")  # no size: managed copy
    assert storage.get_bytes("projects/big/copy.json") == b"{}"
    storage.delete("projects/big/copy.json")
    assert P.rename(storage, "big", "bigger")["objects"] == 2
    assert storage.sha256("projects/bigger/specs/big.bin") == hashlib.sha256(big.read_bytes()).hexdigest()
    assert storage.list("projects/big/") == []
