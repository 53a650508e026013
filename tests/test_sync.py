"""The sync CLI (python -m pose_factory list/pull/pull-latest/prepare-batch/archive/unarchive/push/
doctor/projects) end to end, in process through cli.main, against the local-folder backend and
moto's S3 server through the 40 ms fault proxy. Exit codes: 0 ok, 1 failed, 2 usage, 3 nothing found."""
import json
import os
import socket
from pathlib import Path

import pytest

from pose_factory import cli
from pose_factory import settings as settings_mod
from pose_factory.storage import BatchWriter, LocalStorage, batch_prefix
from tests.s3_support import (ACCESS_KEY, SECRET_KEY, bucket, make_bucket, moto_server, png_bytes, proxy,  # noqa: F401
                              s3_storage, store, write_batch)

BID1, BID2, BID3 = "0123456789abcdef", "fedcba9876543210", "00112233445566ff"
HOSTILE = ["../x", "a/b", "..", "", "x" * 300, "CON", "ｄｅｆａｕｌｔ", "dеfault", "a\0b"]


class Env:
    """A data root in tmp (mirror, working, archive), a config file, and a storage backend."""

    def __init__(self, tmp: Path, monkeypatch, backend: str, storage):
        self.tmp, self.data, self.storage = tmp, tmp / "data", storage
        self.cfg = tmp / "config.yaml"
        storage_cfg = {"backend": backend, "cache_root": str(self.data / "raw"),
                       "local_root": str(getattr(storage, "root", self.data / "storage"))}
        self.cfg.write_text(json.dumps({
            "project": "poses", "storage": storage_cfg, "budget": {"ledger_path": str(self.data / "ledger.sqlite")},
            "sync": {"working_root": str(self.data / "working"), "archive_root": str(self.data / "archive"),
                     "parallel_transfers": 4}}))
        for k in list(os.environ):
            if k.startswith(("CLOUDFLARE_R2_", "POSE_FACTORY_", "RUNPOD_")) and k != "POSE_FACTORY_POINTER_DIR":
                monkeypatch.delenv(k)
        monkeypatch.setenv("POSE_FACTORY_ENV_FILE", str(tmp / "none.env"))
        self.settings = settings_mod.load_settings(self.cfg)
        self.dirs = settings_mod.data_dirs(self.settings)

    def run(self, capsys, *args) -> tuple[int, dict]:
        """cli.main with --json; (exit code, the JSON it printed)."""
        capsys.readouterr()
        code = cli.main(["--config", str(self.cfg), *args, "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out)


def s3_env(tmp_path, monkeypatch, url, bucket_name):
    env = Env(tmp_path, monkeypatch, "r2", s3_storage(url, bucket_name))
    monkeypatch.setenv("CLOUDFLARE_R2_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("CLOUDFLARE_R2_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("POSE_FACTORY_R2_BUCKET", bucket_name)
    monkeypatch.setenv("POSE_FACTORY_S3_ENDPOINT_URL", url)
    return env


@pytest.fixture(params=["local", "s3"])
def env(request, tmp_path, monkeypatch):
    if request.param == "local":
        return Env(tmp_path, monkeypatch, "local", LocalStorage(tmp_path / "storage"))
    p, b = request.getfixturevalue("proxy"), request.getfixturevalue("bucket")
    e = s3_env(tmp_path, monkeypatch, p.url, b)
    e.proxy = p
    return e


def files(n_views, n_frames, seed=0):
    out = {}
    for v in range(n_views):
        for f in range(n_frames):
            out[("openpose", v, f)] = png_bytes(seed + 10 * v + f)
            out[("keypoints", v, f)] = json.dumps({"people": [], "canvas_width": 64, "canvas_height": 64}).encode()
    return out


def tree(root: Path) -> set:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


# --- end to end -------------------------------------------------------------------------------------
def test_list_pull_prepare_archive_unarchive(env, capsys):
    m1 = write_batch(env.storage, "poses", BID1, files(2, 2), 2, 2)
    write_batch(env.storage, "poses", BID2, files(1, 1, seed=50), 1, 1, commit=False)  # incomplete
    code, out = env.run(capsys, "list")
    assert code == 0 and [p["name"] for p in out["projects"]] == ["poses"]
    assert out["projects"][0]["batches"] == 2 and out["projects"][0]["where"] == ["storage"]
    code, out = env.run(capsys, "list", "poses")
    rows = {r["batch_id"]: r for r in out["batches"]}
    assert code == 0 and rows[BID1]["state"] == "complete" and rows[BID2]["state"] == "incomplete"
    assert (rows[BID1]["views"], rows[BID1]["frames"], rows[BID1]["passes"]) == (2, 2, ["keypoints", "openpose"])
    assert rows[BID1]["files"] == 9 and rows[BID1]["bytes"] == sum(
        i["size"] for i in env.storage.list_info(batch_prefix("poses", BID1)).values())
    assert rows[BID1]["created_at"] == m1["created_at"] and rows[BID1]["where"] == ["storage"]

    code, out = env.run(capsys, "pull", BID1)  # the config's project
    folder = env.dirs["mirror"] / "poses" / BID1
    assert code == 0 and (out["fetched"], out["kept"]) == (8, 0) and out["folder"] == str(folder)
    for e in m1["entries"]:
        for info in e["files"].values():
            assert (folder / info["key"]).stat().st_size == info["size"]
    assert json.loads((folder / "manifest.json").read_text())["batch_id"] == BID1
    code, out = env.run(capsys, "pull", f"poses/{BID2}")
    assert code == 3 and "not found" in out["error"]

    code, out = env.run(capsys, "prepare-batch", f"poses/{BID1}")
    cur = env.dirs["current_batch"]
    assert code == 0 and out["link"] == "hardlink" and out["pulled"] is None
    index = json.loads((cur / "batch.json").read_text())
    assert (index["project"], index["batch_id"], index["views"], index["frames"]) == ("poses", BID1, 2, 2)
    assert os.path.samefile(cur / "openpose" / "v01_f0001.png", folder / "openpose" / "v01_f0001.png")
    code, out = env.run(capsys, "list", "poses")
    assert {r["batch_id"]: r["where"] for r in out["batches"]}[BID1] == ["storage", "mirror", "working"]

    code, out = env.run(capsys, "archive", BID1)
    assert code == 0 and out["left_working_set"] is True
    assert not folder.exists() and not cur.exists() and (env.dirs["archive"] / "poses" / BID1 / "manifest.json").is_file()
    code, out = env.run(capsys, "archive", BID1)
    assert code == 3 and "already archived" in out["error"]
    code, out = env.run(capsys, "list", "poses")
    assert {r["batch_id"]: r["where"] for r in out["batches"]}[BID1] == ["storage", "archive"]
    code, out = env.run(capsys, "unarchive", BID1)
    assert code == 0 and out["verified"] == 8 and out["mismatched"] == [] and folder.is_dir()
    code, out = env.run(capsys, "unarchive", BID1)
    assert code == 3

    m3 = write_batch(env.storage, "poses", BID3, files(1, 2, seed=7), 1, 2, commit=False)
    m3["created_at"] = "2099-01-01T00:00:00+00:00"  # the newest, though its id sorts first
    BatchWriter(env.storage, "poses", BID3).commit(m3)
    code, out = env.run(capsys, "pull-latest")
    assert code == 0 and out["batch_id"] == BID3 == m3["batch_id"] and out["fetched"] == 4
    code, out = env.run(capsys, "pull-latest", "nothing-here")
    assert code == 3
    # nothing outside the data root (and, for the folder backend, its storage folder)
    assert {p.split("/")[0] for p in tree(env.tmp)} <= {"data", "config.yaml", "storage"}


def test_second_pull_transfers_nothing_and_a_corrupted_file_is_fetched_again(env, capsys):
    write_batch(env.storage, "poses", BID1, files(3, 2), 3, 2)
    assert env.run(capsys, "pull", BID1)[0] == 0
    folder = env.dirs["mirror"] / "poses" / BID1
    proxy = getattr(env, "proxy", None)
    if proxy:
        proxy.reset_counts()
    code, out = env.run(capsys, "pull", f"poses/{BID1}")  # named: a bare id costs a listing of projects/ first
    assert code == 0 and (out["fetched"], out["kept"], out["fetched_bytes"]) == (0, 12, 0)
    if proxy:  # only the manifest was read
        assert [k for k, n in proxy.gets.items() if n] == [f"{proxy_bucket(env)}/{batch_prefix('poses', BID1)}manifest.json"]

    bad = folder / "openpose" / "v02_f0001.png"
    good = bad.read_bytes()
    bad.write_bytes(good[:40] + bytes(b ^ 0xFF for b in good[40:80]) + good[80:])  # same size, other bytes
    if proxy:
        proxy.reset_counts()
    code, out = env.run(capsys, "pull", f"poses/{BID1}")
    assert code == 0 and (out["fetched"], out["kept"]) == (1, 11) and bad.read_bytes() == good
    if proxy:
        key = f"{proxy_bucket(env)}/{batch_prefix('poses', BID1)}openpose/v02_f0001.png"
        assert proxy.gets[key] == 1 and sum(proxy.gets.values()) == 2  # that file and the manifest


def proxy_bucket(env) -> str:
    return env.storage.bucket


def test_interrupted_pull_resumes_fetching_only_what_is_missing(tmp_path, monkeypatch, capsys, proxy, bucket):
    """One transfer at a time; the proxy cuts the 10th file's body every time, so the pull fails
    half-way (exit 1) with files 1-9 in the mirror, a part of the 10th, none of the rest. The second
    pull fetches the 10th from where it broke (a Range GET) and the rest, never files 1-9."""
    env = s3_env(tmp_path, monkeypatch, proxy.url, bucket)
    cfg = json.loads(env.cfg.read_text())
    cfg["sync"]["parallel_transfers"] = 1
    env.cfg.write_text(json.dumps(cfg))
    data = {("openpose", v, 0): png_bytes(v, size=128) for v in range(20)}
    m = write_batch(env.storage, "poses", BID1, data, 20, 1)
    keys = [e["files"]["openpose"]["key"] for e in sorted(m["entries"], key=lambda e: e["view"])]
    prefix = f"{bucket}/{batch_prefix('poses', BID1)}"
    proxy.cut(prefix + keys[9], after_bytes=700, times=4)  # download.py tries 4 times per pull
    proxy.reset_counts()
    code, out = env.run(capsys, "pull", BID1)
    assert code == 1 and keys[9] in out["error"]
    folder = env.dirs["mirror"] / "poses" / BID1
    have = {k for k in keys if (folder / k).is_file()}
    # files 1-9, not the 10th; at most the one the worker had already taken up when the 10th failed
    assert set(keys[:9]) <= have <= set(keys[:9]) | {keys[10]}
    part = folder / (keys[9] + ".part")
    assert part.stat().st_size == 4 * 700  # each try resumed where the last one broke
    assert not (folder / "manifest.json").exists()
    first = dict(proxy.gets)

    proxy.reset_counts()
    code, out = env.run(capsys, "pull", BID1)
    assert code == 0 and (out["fetched"], out["kept"]) == (20 - len(have), len(have))
    assert all(proxy.gets[prefix + k] == (k not in have) for k in keys)  # only what was missing
    assert (prefix + keys[9], "bytes=2800-") in proxy.ranges
    assert all(first[prefix + k] == 1 for k in have)
    for k, (name, v, f) in zip(keys, sorted(data)):
        assert (folder / k).read_bytes() == data[(name, v, f)]
    assert not list(folder.rglob("*.part"))


def test_push_spec_and_manifest_with_its_files(env, capsys, tmp_path):
    src = tmp_path / "local-store"
    m = write_batch(LocalStorage(src), "poses", BID1, files(1, 2), 1, 2)
    batch_folder = src / batch_prefix("poses", BID1)
    spec = tmp_path / "specs" / "walk.json"
    spec.parent.mkdir()
    spec.write_text(json.dumps({"project": "poses", "subjects": [{"type": "mannequin", "poses": ["a_pose"]}]}))
    code, out = env.run(capsys, "push", str(batch_folder / "manifest.json"))
    assert code == 0 and out["pushed"][0]["uploaded"] == 5
    got = json.loads(env.storage.get_bytes(batch_prefix("poses", BID1) + "manifest.json"))
    assert got["entries"] == m["entries"]
    code, out = env.run(capsys, "push", str(tmp_path / "specs"))
    key = out["pushed"][0]["key"]
    assert code == 0 and key.startswith("projects/poses/specs/") and env.storage.exists(key)
    code, out = env.run(capsys, "push", str(batch_folder / "openpose" / "v00_f0000.png"))
    assert code == 2
    code, out = env.run(capsys, "push", str(tmp_path / "nope"))
    assert code == 3
    (batch_folder / "keypoints" / "v00_f0001.json").unlink()  # a manifest whose file is nowhere
    m2 = dict(m, batch_id=BID2)
    (tmp_path / "m2").mkdir()
    (tmp_path / "m2" / "manifest.json").write_text(json.dumps(m2))
    code, out = env.run(capsys, "push", str(tmp_path / "m2" / "manifest.json"))
    assert code == 1 and "neither in storage nor beside the manifest" in out["error"]
    assert not env.storage.exists(batch_prefix("poses", BID2) + "manifest.json")


def test_a_bare_batch_id_is_found_in_any_project_and_several_are_listed(env, capsys):
    """Issue 21.5: prepare-batch BATCH_ID (the founding document's form) looked only in the config's
    project ("poses") and said "not found"; so did pull, archive and unarchive."""
    write_batch(env.storage, "walks", BID1, files(1, 1), 1, 1)
    code, out = env.run(capsys, "prepare-batch", BID1)
    assert code == 0, out
    assert (out["project"], out["batch_id"], out["pulled"]["project"]) == ("walks", BID1, "walks")
    assert json.loads((env.dirs["current_batch"] / "batch.json").read_text())["project"] == "walks"
    code, out = env.run(capsys, "pull", BID1)
    assert code == 0 and (out["project"], out["fetched"]) == ("walks", 0)
    code, out = env.run(capsys, "archive", BID1)
    assert code == 0 and out["folder"] == str(env.dirs["archive"] / "walks" / BID1)
    code, out = env.run(capsys, "archive", BID1)
    assert code == 3 and f"walks/{BID1} is already archived" in out["error"]
    code, out = env.run(capsys, "unarchive", BID1)
    assert code == 0 and out["project"] == "walks"
    # the same id in two projects: listed, and --project (or PROJECT/ID) asked for
    write_batch(env.storage, "runs", BID1, files(1, 1), 1, 1)
    for args in (["prepare-batch", BID1], ["pull", BID1]):
        code, out = env.run(capsys, *args)
        assert code == 2, (args, out)
        assert f"is in 2 projects: runs/{BID1} (storage), walks/{BID1} (" in out["error"]
        assert "--project NAME, or PROJECT/BATCH_ID" in out["error"]
    code, out = env.run(capsys, "prepare-batch", BID1, "--project", "runs")
    assert code == 0 and out["project"] == "runs"
    code, out = env.run(capsys, "pull", f"walks/{BID1}")
    assert code == 0 and out["project"] == "walks"
    code, out = env.run(capsys, "prepare-batch", BID3)
    assert code == 3 and f"batch {BID3} not found in any project (looked in the mirror" in out["error"]


def test_projects_subcommands(env, capsys):
    code, out = env.run(capsys, "projects", "list")
    assert code == 3 and out["projects"] == []
    code, out = env.run(capsys, "projects", "create", "dance", "--display-name", "Dance Set")
    assert code == 0 and out["display_name"] == "Dance Set"
    code, out = env.run(capsys, "projects", "create", "dance")
    assert code == 1 and "already exists" in out["error"]
    write_batch(env.storage, "dance", BID1, files(1, 1), 1, 1)
    assert env.run(capsys, "pull", f"dance/{BID1}")[0] == 0
    code, out = env.run(capsys, "projects", "rename", "dance", "ballet")
    assert code == 0 and out["objects"] == 4
    assert (env.dirs["mirror"] / "ballet" / BID1 / "manifest.json").is_file()  # the mirror follows
    assert not (env.dirs["mirror"] / "dance").exists()
    # the loaders serve it from the mirror without storage, though its manifest still says "dance"
    from pose_factory.storage.download import cached_batch
    assert cached_batch(env.dirs["mirror"], "ballet", BID1) is not None
    code, out = env.run(capsys, "pull", f"ballet/{BID1}")  # same batch id, already in the mirror
    assert code == 0 and out["fetched"] == 0
    code, out = env.run(capsys, "projects", "list")
    assert [p["name"] for p in out["projects"]] == ["ballet"]
    assert out["projects"][0]["display_name"] == "Dance Set"  # one the user chose stays
    env.run(capsys, "projects", "create", "solo")
    assert env.run(capsys, "projects", "rename", "solo", "duet")[0] == 0
    code, out = env.run(capsys, "list")  # issue 21.4: the new name, not the old one as its display name
    assert {p["name"]: p["display_name"] for p in out["projects"]} == {"ballet": "Dance Set", "duet": "duet"}
    env.run(capsys, "projects", "delete", "duet")
    code, out = env.run(capsys, "projects", "delete", "ballet")
    assert code == 1 and "--force" in out["error"]
    code, out = env.run(capsys, "projects", "delete", "ballet", "--force")
    assert code == 0 and out["deleted_objects"] == 4
    code, out = env.run(capsys, "projects", "rename", "ballet", "tap")
    assert code == 3


# --- names, usage, exit codes ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_refused_by_the_cli_writing_nothing(tmp_path, monkeypatch, capsys, name):
    env = Env(tmp_path, monkeypatch, "local", LocalStorage(tmp_path / "storage"))
    before = tree(tmp_path)
    for args in (["projects", "create", name], ["projects", "rename", "poses", name],
                 ["projects", "rename", name, "poses"], ["projects", "delete", name], ["list", name],
                 ["pull-latest", name], ["pull", BID1, "--project", name], ["prepare-batch", f"{name}/{BID1}"],
                 ["archive", BID1, "--project", name]):
        code, out = env.run(capsys, *args)
        assert code == 2, (args, out)
        assert "allowed:" in out["error"] and out["exit_code"] == 2
    assert tree(tmp_path) == before  # nothing written anywhere


def test_usage_errors_are_exit_2_with_json(tmp_path, monkeypatch, capsys):
    env = Env(tmp_path, monkeypatch, "local", LocalStorage(tmp_path / "storage"))
    for args in (["teleport"], ["pull"], ["pull", "xyz"], ["projects"], ["projects", "create"]):
        code, out = env.run(capsys, *args)
        assert code == 2 and out["ok"] is False and out["error"], args
    assert cli.main(["--config", str(env.cfg), "pull", "nothex"]) == 2
    assert "allowed: a batch id" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage: {backend: ftp}\n")
    assert cli.main(["--config", str(bad), "list"]) == 2


def test_every_subcommand_takes_json():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    assert set(sub.choices) >= {"list", "pull", "pull-latest", "prepare-batch", "archive", "unarchive", "push",
                                "doctor", "projects", "render", "demo"}
    for name, p in sub.choices.items():
        assert "--json" in p._option_string_actions, name
    psub = next(a for a in sub.choices["projects"]._actions if a.dest == "action")
    assert set(psub.choices) == {"create", "list", "rename", "delete"}
    for name, p in psub.choices.items():
        assert "--json" in p._option_string_actions, name


# --- doctor --------------------------------------------------------------------------------------------
def test_doctor_names_each_missing_credential(tmp_path, monkeypatch, capsys):
    env = Env(tmp_path, monkeypatch, "r2", LocalStorage(tmp_path / "storage"))
    cfg = json.loads(env.cfg.read_text())
    cfg["client"] = "runpod"
    env.cfg.write_text(json.dumps(cfg))
    monkeypatch.setenv("CLOUDFLARE_R2_ACCESS_KEY_ID", "AKIA-not-a-secret-here")
    code, out = env.run(capsys, "doctor", "--no-worker")
    assert code == 1 and out["ok"] is False
    failed = {c["check"]: c for c in out["checks"] if not c["ok"]}
    assert set(failed) == {"credential CLOUDFLARE_R2_SECRET_ACCESS_KEY", "credential POSE_FACTORY_R2_BUCKET",
                           "credential CLOUDFLARE_R2_ACCOUNT_ID", "credential RUNPOD_API_KEY",
                           "credential RUNPOD_ENDPOINT_ID", "storage"}
    assert "set CLOUDFLARE_R2_SECRET_ACCESS_KEY in the environment" in failed[
        "credential CLOUDFLARE_R2_SECRET_ACCESS_KEY"]["fix"]
    assert "AKIA-not-a-secret-here" not in json.dumps(out)  # a value is never shown
    capsys.readouterr()
    assert cli.main(["--config", str(env.cfg), "doctor", "--no-worker"]) == 1
    text = capsys.readouterr().err
    assert "[FAIL] credential RUNPOD_API_KEY: missing" in text and "[ok] credential CLOUDFLARE_R2_ACCESS_KEY_ID" in text


def test_doctor_reports_an_unreachable_bucket_by_name(tmp_path, monkeypatch, capsys, moto_server):
    env = s3_env(tmp_path, monkeypatch, moto_server.url, "no-such-bucket-here")
    code, out = env.run(capsys, "doctor", "--no-worker")
    storage = next(c for c in out["checks"] if c["check"] == "storage")
    assert code == 1 and not storage["ok"] and "'no-such-bucket-here'" in storage["detail"]
    assert "unreachable" in storage["detail"] and "POSE_FACTORY_R2_BUCKET" in storage["fix"]
    with socket.socket() as s:  # an endpoint nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("POSE_FACTORY_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    code, out = env.run(capsys, "doctor", "--no-worker")
    storage = next(c for c in out["checks"] if c["check"] == "storage")
    assert code == 1 and "'no-such-bucket-here'" in storage["detail"] and f"127.0.0.1:{port}" in storage["detail"]
    good = make_bucket(moto_server.url)
    monkeypatch.setenv("POSE_FACTORY_S3_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("POSE_FACTORY_R2_BUCKET", good)
    code, out = env.run(capsys, "doctor", "--no-worker")
    assert code == 0 and all(c["ok"] for c in out["checks"]), out
    assert s3_storage(moto_server.url, good).list("") == []  # the probe object was removed


def test_doctor_checks_the_worker_python(tmp_path, monkeypatch, capsys):
    env = Env(tmp_path, monkeypatch, "local", LocalStorage(tmp_path / "storage"))
    cfg = json.loads(env.cfg.read_text())
    cfg["worker_python"] = str(tmp_path / "no-python")
    env.cfg.write_text(json.dumps(cfg))
    code, out = env.run(capsys, "doctor")
    worker = next(c for c in out["checks"] if c["check"] == "worker python")
    assert code == 1 and not worker["ok"] and "no-python" in worker["detail"] and "worker_python" in worker["fix"]
    assert next(c for c in out["checks"] if c["check"] == "storage")["ok"]


@pytest.mark.blender
def test_doctor_finds_bpy_and_mediapipe(tmp_path, monkeypatch, capsys):
    import sys

    env = Env(tmp_path, monkeypatch, "local", LocalStorage(tmp_path / "storage"))
    cfg = json.loads(env.cfg.read_text())
    cfg["worker_python"] = sys.executable  # the test venv has bpy and MediaPipe
    env.cfg.write_text(json.dumps(cfg))
    code, out = env.run(capsys, "doctor")
    checks = {c["check"]: c for c in out["checks"]}
    assert code == 0, out
    assert checks["blender (bpy)"]["detail"].startswith("Blender 5.0") and checks["mediapipe"]["ok"]


# --- the loaders' "current batch" ------------------------------------------------------------------------
def test_loader_current_batch(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    env = Env(tmp_path, monkeypatch, "local", LocalStorage(tmp_path / "storage"))
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(env.cfg))
    from nodes import loader_nodes as L

    node = L.PoseFactoryLoadPoseFromR2
    assert L.CURRENT_BATCH in node.INPUT_TYPES()["required"]["batch_id"][0]
    assert node.VALIDATE_INPUTS(batch_id=L.CURRENT_BATCH) is True
    args = dict(project="poses", views="all", frames="all", order="view_major", hands=True, face=True)
    with pytest.raises(ValueError, match="prepare-batch"):
        node().load(batch_id=L.CURRENT_BATCH, **args)
    write_batch(env.storage, "poses", BID1, files(2, 1), 2, 1)
    write_batch(env.storage, "poses", BID2, files(1, 1, seed=9), 1, 1)
    assert env.run(capsys, "prepare-batch", BID1)[0] == 0
    before = node.IS_CHANGED(batch_id=L.CURRENT_BATCH, **args)
    got = node().load(batch_id=L.CURRENT_BATCH, **dict(args, project="ignored"))["result"][0]
    want = node().load(batch_id=BID1, **args)["result"][0]
    assert got.shape[0] == 2 and (got == want).all()
    assert env.run(capsys, "prepare-batch", BID2)[0] == 0
    assert node.IS_CHANGED(batch_id=L.CURRENT_BATCH, **args) != before  # a re-run follows the current batch
    assert node().load(batch_id=L.CURRENT_BATCH, **args)["result"][0].shape[0] == 1


def test_doctor_checks_the_runpod_endpoint(tmp_path, monkeypatch, capsys):
    """Against the local server speaking RunPod's v2 API (its /health), with the right key and a wrong one."""
    pytest.importorskip("runpod")
    from tests.runpod_v2_server import RunPodV2Server

    env = Env(tmp_path, monkeypatch, "local", LocalStorage(tmp_path / "storage"))
    with RunPodV2Server("right-key", env={"POSE_FACTORY_STORAGE_ROOT": str(tmp_path / "rp")}, workers=1,
                        worker_log=tmp_path / "worker") as srv:
        monkeypatch.setenv("RUNPOD_ENDPOINT_ID", srv.endpoint_id)
        monkeypatch.setenv("POSE_FACTORY_RUNPOD_URL", srv.url_base)
        monkeypatch.setenv("RUNPOD_API_KEY", "right-key")
        code, out = env.run(capsys, "doctor", "--no-worker")
        rp = next(c for c in out["checks"] if c["check"] == "runpod endpoint")
        assert code == 0 and rp["ok"] and rp["detail"].startswith("healthy; workers ")
        monkeypatch.setenv("RUNPOD_API_KEY", "wrong-key")
        code, out = env.run(capsys, "doctor", "--no-worker")
        rp = next(c for c in out["checks"] if c["check"] == "runpod endpoint")
        assert code == 1 and not rp["ok"] and "HTTP 401" in rp["detail"] and "RUNPOD_API_KEY" in rp["fix"]
        assert "wrong-key" not in json.dumps(out)


def test_console_entry_point_is_the_cli():
    import importlib
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    module, fn = data["project"]["scripts"]["pose-factory"].split(":")
    assert getattr(importlib.import_module(module), fn) is cli.main
    assert "pose_factory" in data["tool"]["setuptools"]["packages"] and "tqdm" in data["project"]["dependencies"]
