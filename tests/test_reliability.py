"""Issue 10: what an untrusted bucket, a huge spec, a crash or a race could do, each fixed and
kept fixed (points 3, 4, 5 and 7). Real parts: moto's S3 server on loopback, real processes
killed with SIGKILL, the real runpod SDK running the real handler, real Blender renders."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pose_factory import loading, settings as settings_mod, spec as spec_mod
from pose_factory.jobs import budget
from pose_factory.storage import index
from pose_factory.render import openpose
from pose_factory import manifest as M
from pose_factory import storage as S
from pose_factory.storage.download import download_batch
from pose_factory.errors import ManifestError, SpecError, StorageError
from tests.s3_support import (ACCESS_KEY, SECRET_KEY, bucket, moto_server, png_bytes, proxy,  # noqa: F401
                              s3_storage, store, write_batch)

ROOT = Path(__file__).resolve().parent.parent
BID = "0123456789abcdef"
needs_sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")


def child_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RUNPOD_", "CLOUDFLARE_R2_", "POSE_FACTORY_")) or k == "POSE_FACTORY_POINTER_DIR"}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def python(code: str, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=kw.get("timeout", 120))


# --- 3. a forced re-render killed during upload leaves the complete batch loadable ---------------------
REWRITER = r'''
import sys, time
from pose_factory import manifest as M, storage as S
kind, where, bucket, bid = sys.argv[1:5]
if kind == "s3":
    from tests.s3_support import s3_storage
    store = s3_storage(where, bucket)
else:
    store = S.LocalStorage(where)
w = S.BatchWriter(store, "p", bid)
for v in range(3):
    w.add_file(M.image_key("openpose", v, 0), b"re-rendered %d" % v)
    print("wrote", v, flush=True)
    if v == 1:
        time.sleep(600)  # SIGKILLed here, half-way through the upload
'''


@needs_sigkill
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_forced_rerender_killed_mid_upload_leaves_the_batch_loadable(kind, tmp_path, request):
    if kind == "s3":
        server, name = request.getfixturevalue("moto_server"), request.getfixturevalue("bucket")
        storage, where = s3_storage(server.url, name), server.url
    else:
        name, where = "", str(tmp_path / "store")
        storage = S.LocalStorage(where)
    old_files = {("openpose", v, 0): png_bytes(v) for v in range(3)}
    old = write_batch(storage, "p", BID, old_files, views=3, frames=1)

    proc = subprocess.Popen([sys.executable, "-c", REWRITER, kind, where, name, BID], cwd=ROOT, env=child_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "wrote 1":
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    assert S.read_manifest(storage, "p", BID) == old  # still there, still the old one
    m, folder = download_batch(storage, "p", BID, tmp_path / "cache")  # every file verified by hash
    assert {(e["view"]): (folder / e["files"]["openpose"]["key"]).read_bytes() for e in m["entries"]} == \
        {v: old_files[("openpose", v, 0)] for v in range(3)}

    # a re-render that completes switches the manifest, then removes the replaced files
    new_files = {("openpose", v, 0): png_bytes(10 + v) for v in range(3)}
    new = write_batch(storage, "p", BID, new_files, views=3, frames=1)
    assert S.read_manifest(storage, "p", BID) == new
    prefix = S.batch_prefix("p", BID)
    assert all(i["key"].startswith("gen-") for e in new["entries"] for i in e["files"].values())
    assert not any(storage.exists(prefix + i["key"]) for e in old["entries"] for i in e["files"].values())
    listed = {i["key"] for e in new["entries"] for i in e["files"].values()}
    assert set(storage.list(prefix)) == {prefix + k for k in listed} | {prefix + S.MANIFEST_NAME}  # killed one's too
    m, folder = download_batch(storage, "p", BID, tmp_path / "cache2")
    assert sorted((folder / e["files"]["openpose"]["key"]).read_bytes() for e in m["entries"]) == \
        sorted(new_files.values())


# --- 3. four processes sending the same spec: one render, shared; the batch never disappears ----------
RACER = r'''
import json, sys
from pose_factory import render, storage as S
m, rendered = render.render_batch(json.loads(sys.argv[2]), S.LocalStorage(sys.argv[1]), project="race")
print(json.dumps({"rendered": rendered, "created_at": m["created_at"], "keys": sorted(
    i["key"] for e in m["entries"] for i in e["files"].values())}))
'''
TINY = {"render": {"width": 64, "height": 64, "passes": ["openpose"]},
        "cameras": {"type": "orbit", "views": 1}, "subjects": [{"poses": ["a_pose"]}]}


@pytest.mark.blender
def test_four_processes_same_spec_render_once_and_share(tmp_path):
    root = tmp_path / "store"
    storage = S.LocalStorage(root)
    bid = spec_mod.batch_id(spec_mod.normalize_spec(TINY))
    seen, stop = [], threading.Event()

    def poll():  # a reader: once the batch is complete it must stay complete
        while not stop.is_set():
            m = S.read_manifest(storage, "race", bid)
            seen.append(None if m is None else m["created_at"])
            time.sleep(0.02)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        procs = [subprocess.Popen([sys.executable, "-c", RACER, str(root), json.dumps(TINY)], cwd=ROOT,
                                  env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        stop.set()
        reader.join()
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert sum(r["rendered"] for r in results) == 1  # one render; three waited and shared it
    assert len({(r["created_at"], tuple(r["keys"])) for r in results}) == 1
    first = next(i for i, c in enumerate(seen) if c is not None)
    assert None not in seen[first:]


RP_RACER = r'''
import json, sys
from pose_factory import settings as settings_mod
from pose_factory.jobs import client
s = settings_mod.load_settings(overrides=json.loads(sys.argv[1]))
r = client.RunPodClient(s, json.loads(sys.argv[2])).run(json.loads(sys.argv[3]), project="rp-race")
print(json.dumps({"rendered": r.rendered, "created_at": r.manifest["created_at"]}))
'''


@pytest.mark.blender
def test_four_processes_sending_one_spec_to_runpod_submit_one_job(tmp_path):
    from tests.runpod_v2_server import RunPodV2Server

    key = "rp-race-key"
    store = tmp_path / "store"
    with RunPodV2Server(key, env={"POSE_FACTORY_STORAGE_ROOT": str(store)}, workers=2,
                        worker_log=tmp_path / "worker") as srv:
        over = {"storage": {"local_root": str(store), "cache_root": str(tmp_path / "cache")},
                "budget": {"ledger_path": str(tmp_path / "ledger.sqlite")},
                "runpod": {"poll_interval_s": 0.2, "url_base": srv.url_base}}
        env = {"RUNPOD_API_KEY": key, "RUNPOD_ENDPOINT_ID": srv.endpoint_id}
        args = [json.dumps(over), json.dumps(env), json.dumps(TINY)]
        procs = [subprocess.Popen([sys.executable, "-c", RP_RACER, *args], cwd=ROOT, env=child_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=600) for p in procs]
        submitted = [p for m, p in list(srv.requests) if m == "POST" and p.endswith("/run")]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert len(submitted) == 1 and sum(r["rendered"] for r in results) == 1
    assert len({r["created_at"] for r in results}) == 1
    assert len(budget.Ledger(tmp_path / "ledger.sqlite").entries()) == 1  # one job paid for


# --- 4. budget reservations expire; the owner is recorded; the CLI lists them --------------------------
RESERVER = r'''
import os, signal, sys
from pose_factory.jobs import budget
budget.Ledger(sys.argv[1], 1.0).reserve("job-killed", 0.9, expires_in_s=600)
print(os.getpid(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # killed between reserve and settle
'''


def budget_cli(tmp_path, ledger_path) -> subprocess.CompletedProcess:
    config = tmp_path / "config.yaml"
    config.write_text(f"budget:\n  ledger_path: {json.dumps(str(ledger_path))}\n  monthly_gpu_limit_usd: 1.0\n")
    return subprocess.run([sys.executable, "-m", "pose_factory", "budget"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=child_env(POSE_FACTORY_CONFIG=str(config)))


@needs_sigkill
def test_killed_clients_reservation_expires_is_released_logged_and_listed(tmp_path, caplog):
    path = tmp_path / "ledger.sqlite"
    proc = subprocess.run([sys.executable, "-c", RESERVER, str(path)], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    pid = int(proc.stdout.split()[0])
    ledger = budget.Ledger(path, 1.0)
    [r] = ledger.reservations()
    assert r["job_key"] == "job-killed" and r["owner"].endswith(f"pid {pid}")
    assert datetime.fromisoformat(r["expires_at"]) - datetime.fromisoformat(r["reserved_at"]) == timedelta(seconds=600)

    listing = budget_cli(tmp_path, path)  # before expiry: listed as open, with owner and expiry
    assert listing.returncode == 0, listing.stderr
    assert "open reservations: 1" in listing.stdout and f"pid {pid}" in listing.stdout
    assert r["expires_at"] in listing.stdout

    with pytest.raises(budget.BudgetExceeded):  # not expired yet: it still holds its money
        ledger.reserve("next", 0.5)
    later = datetime.now(timezone.utc) + timedelta(minutes=11)
    with caplog.at_level(logging.WARNING, logger="pose_factory.budget"):
        ledger.reserve("next", 0.5, now=later)  # expired: released, so this one fits
    assert any("job-killed" in m and "expired" in m for m in caplog.messages)
    assert [x["job_key"] for x in ledger.reservations()] == ["next"]
    assert [x["job_key"] for x in ledger.expired()] == ["job-killed"]
    # its client comes back after all and settles: the money is recorded, not lost
    ledger.settle("job-killed", 0.25, {}, now=later)
    assert ledger.spent_this_month(now=later) == pytest.approx(0.25)

    listing = budget_cli(tmp_path, path)
    assert listing.returncode == 0 and "next" in listing.stdout


def test_reservation_on_an_old_ledger_gets_an_expiry(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE ledger (job_key TEXT PRIMARY KEY, state TEXT NOT NULL CHECK (state IN
        ('reserved', 'settled')), estimate_micros INTEGER NOT NULL, cost_micros INTEGER, month TEXT NOT NULL,
        reserved_at TEXT NOT NULL, settled_at TEXT, details TEXT);
        INSERT INTO ledger VALUES ('stale', 'reserved', 900000, NULL, '2026-10', '2026-10-02T00:00:00+00:00',
        NULL, NULL);""")
    db.commit()
    db.close()
    ledger = budget.Ledger(path, 1.0)  # the reservation a killed client left before expiry existed
    ledger.reserve("new", 0.5)
    assert [r["job_key"] for r in ledger.reservations()] == ["new"]
    assert [r["job_key"] for r in ledger.expired()] == ["stale"]


# --- 5. raw exceptions become named errors -------------------------------------------------------------
BIG = 10 ** 400


def test_huge_numbers_are_named_errors(tmp_path):
    base = {"subjects": [{"poses": ["a_pose"]}]}
    for section, key in (("cameras", "elevation"), ("cameras", "views"), ("render", "width")):
        with pytest.raises(SpecError) as e:
            spec_mod.normalize_spec(dict(base, **{section: {key: BIG}}))
        assert e.value.field == f"{section}.{key}" and "digits" in str(e.value) and len(str(e.value)) < 300
    with pytest.raises(SpecError, match=r"subjects\[0\]\.height"):
        spec_mod.normalize_spec({"subjects": [{"poses": ["a_pose"], "height": -BIG}]})
    huge = "9" * 5000  # past Python's 4300-digit limit for int(str)
    with pytest.raises(loading.SelectionError, match="views") as e:
        loading.parse_indices(huge, 4, "views")
    assert len(str(e.value)) < 500
    spec_file = tmp_path / "s.json"
    spec_file.write_text('{"subjects": [{"poses": ["a_pose"]}], "cameras": {"views": %s}}' % huge)
    with pytest.raises(SpecError, match="not valid JSON") as e:
        spec_mod.load_spec_file(spec_file)
    assert e.value.field == str(spec_file)
    with pytest.raises(settings_mod.SettingsError, match="runpod.idle_timeout_s"):
        settings_mod.load_settings(overrides={"runpod": {"idle_timeout_s": BIG}})
    config = tmp_path / "c.yaml"
    config.write_text(f"runpod:\n  job_timeout_s: {huge}\n")
    with pytest.raises(settings_mod.SettingsError, match=str(config)):
        settings_mod.load_settings(config)
    with pytest.raises(ValueError, match="estimate_usd"):
        budget.Ledger(tmp_path / "l.sqlite").reserve("k", BIG)


def deep(n: int) -> str:
    return "[" * n + "]" * n


def test_deeply_nested_json_is_named(tmp_path, moto_server, bucket):  # noqa: F811
    storage = s3_storage(moto_server.url, bucket)
    storage.put_bytes(S.manifest_key("p", BID), deep(100_000).encode())
    with pytest.raises(ManifestError, match="nested too deeply") as e:
        S.read_manifest(storage, "p", BID)
    assert e.value.field == S.manifest_key("p", BID)

    spec_file = tmp_path / "deep.json"
    spec_file.write_text(deep(100_000))
    cli = subprocess.run([sys.executable, "-m", "pose_factory", "render", str(spec_file), "--out",
                          str(tmp_path / "out")], cwd=ROOT, env=child_env(), capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 2 and "nested too deeply" in cli.stderr and str(spec_file) in cli.stderr
    assert "Traceback" not in cli.stderr

    kp = tmp_path / "keypoints" / "v00_f0000.json"
    kp.parent.mkdir()
    kp.write_text(deep(100_000))
    with pytest.raises(ManifestError, match="keypoints/v00_f0000.json: .*JSON nested too deeply"):
        loading.read_keypoints(tmp_path, [{"files": {"keypoints": {"key": "keypoints/v00_f0000.json"}}}],
                               {"width": 64, "height": 64})


def test_pose_from_json_node_refuses_deep_nesting():
    pytest.importorskip("torch")
    from nodes.spec_nodes import PoseFactoryPoseFromJSON

    with pytest.raises(SpecError, match="nested too deeply") as e:
        PoseFactoryPoseFromJSON().make(deep(100_000), "rest")
    assert e.value.field == "joints"


def test_non_utf8_files_are_named(tmp_path):
    bad = b'{"subjects": [{"poses": ["a_pose\xff"]}]}'
    for name in ("spec.json", "spec.yaml"):
        (tmp_path / name).write_bytes(bad)
        with pytest.raises(SpecError, match="not UTF-8") as e:
            spec_mod.load_spec_file(tmp_path / name)
        assert e.value.field == str(tmp_path / name)
    (tmp_path / "config.yaml").write_bytes(b"project: caf\xe9\n")
    with pytest.raises(settings_mod.SettingsError, match=r"config\.yaml: not UTF-8"):
        settings_mod.load_settings(tmp_path / "config.yaml")
    (tmp_path / ".env").write_bytes(b"RUNPOD_API_KEY=s\xe9cret\n")
    with pytest.raises(settings_mod.SettingsError, match=r"\.env: not UTF-8") as e:
        settings_mod.load_env(tmp_path / ".env")
    assert "cret" not in str(e.value)  # the secret is not echoed


def test_ledger_path_errors_are_named(tmp_path):
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "file" / "ledger.sqlite", tmp_path):  # under a file; a folder in its place
        with pytest.raises(budget.LedgerError, match="budget.ledger_path") as e:
            budget.Ledger(path)
        assert str(path) in str(e.value)


FULL_DISK = r'''
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
what, path = sys.argv[1:3]
if what == "ledger":
    from pose_factory.jobs import budget
    ledger = budget.Ledger(path, 1e6)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))
    try:
        for i in range(10000):
            ledger.reserve("job-%d" % i, 0.0)
            ledger.settle("job-%d" % i, 0.0, {"pad": "x" * 4000})
    except budget.LedgerError as e:
        print("LedgerError:", e)
else:
    from pose_factory.storage import index
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))
    try:
        index._save(path, index.load(path))
    except OSError as e:
        print("OSError:", e)
'''


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_full_disk_gives_named_ledger_error_and_leaves_no_index_tmp(tmp_path):
    out = python(FULL_DISK, "ledger", tmp_path / "ledger.sqlite")
    assert out.returncode == 0 and "LedgerError: budget ledger" in out.stdout, out.stderr[-2000:]
    assert "budget.ledger_path" in out.stdout

    cache = tmp_path / "cache"
    cache.mkdir()
    projects = {f"p{i}": {f"{i:016x}": {"created_at": "x" * 200, "views": 1}} for i in range(1000)}
    (cache / index.INDEX_NAME).write_text(json.dumps({"version": 1, "projects": projects}))
    before = (cache / index.INDEX_NAME).read_bytes()
    out = python(FULL_DISK, "index", cache)
    assert "OSError" in out.stdout, out.stderr[-2000:]
    assert sorted(p.name for p in cache.iterdir()) == [index.INDEX_NAME]  # no .index.*.tmp left
    assert (cache / index.INDEX_NAME).read_bytes() == before


def test_keypoints_past_int32_are_refused_by_name():
    frame = {"people": [{"pose_keypoints_2d": [10.0, 10.0, 1.0] * 17 + [2.0 ** 31, 5.0, 1.0]}],
             "canvas_width": 64, "canvas_height": 64}
    with pytest.raises(ValueError, match=r"people\[0\]\.pose_keypoints_2d\[51\] must be from -1000000"):
        openpose.draw_pose(frame)
    with pytest.raises(ValueError, match=r"pose_keypoints_2d\[51\]"):
        openpose.validate_pose_keypoint(frame)
    frame["people"][0]["pose_keypoints_2d"][51] = 10 ** 400
    with pytest.raises(ValueError, match=r"pose_keypoints_2d\[51\] must be a finite number, got an integer"):
        openpose.draw_pose(frame)
    with pytest.raises(ValueError, match="canvas_width must be at most 16384"):
        openpose.draw_pose(dict(frame, canvas_width=2 ** 40))


# --- 5. the worker answers {"error": …} for every bad input, never a traceback ---------------------------
@pytest.mark.blender  # the runpod SDK lives in the worker venv
@pytest.mark.parametrize("job_input, field", [
    ({"spec": {"kind": [1], "subjects": [{"poses": ["a_pose"]}]}}, "input.spec.kind"),
    ({"spec": {"subjects": [{"poses": ["a_pose"]}], "cameras": {"elevation": BIG}}}, "input.spec.cameras.elevation"),
    ({"spec": {"subjects": [{"poses": ["a_pose"]}]}, "shard": {"views": [0, "x" * 100_000]}}, "input.shard"),
    ({"spec": {"subjects": [{"poses": ["a_pose"]}]}, "x" * 100_000: 1}, "input.xxxx"),
])
def test_handler_answers_an_error_never_a_traceback(tmp_path, job_input, field):
    from tests.test_pod_worker import run_handler

    proc = run_handler(tmp_path, "--test_input", json.dumps({"input": job_input}), cwd=tmp_path, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    err = next(ln for ln in out.splitlines() if "failed with error:" in ln)
    assert f"error: {field}" in err and "Traceback" not in out and len(err) < 2000


# --- 7. smaller ones -------------------------------------------------------------------------------------
@pytest.mark.blender
def test_missing_bucket_is_found_before_rendering(tmp_path, moto_server):  # noqa: F811
    from tests.test_pod_worker import run_handler

    job = json.dumps({"input": {"spec": TINY, "project": "r2"}})
    proc = run_handler(tmp_path / "unused", "--test_input", job, cwd=tmp_path, timeout=300,
                       POSE_FACTORY_R2_BUCKET="no-such-bucket", POSE_FACTORY_S3_ENDPOINT_URL=moto_server.url,
                       CLOUDFLARE_R2_ACCESS_KEY_ID=ACCESS_KEY, CLOUDFLARE_R2_SECRET_ACCESS_KEY=SECRET_KEY)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    err = next(ln for ln in out.splitlines() if "failed with error:" in ln)
    assert "bucket 'no-such-bucket' does not exist" in err
    assert "'state': 'rendering'" not in out  # refused before Blender ran


def test_refusal_messages_are_capped(tmp_path):
    huge = "x" * 2_000_000
    refusals = [
        lambda: spec_mod.normalize_spec({"subjects": [{"poses": ["a_pose"]}], huge: 1}),
        lambda: spec_mod.normalize_spec({"subjects": [{"poses": ["a_pose"]}], "render": {"passes": [huge]}}),
        lambda: spec_mod.validate_project_name(huge),
        lambda: S.validate_key("../" + huge),
        lambda: M.check_file_key(huge, "entries[0].files.openpose.key"),
        lambda: settings_mod.load_settings(overrides={huge: 1}),
        lambda: settings_mod.load_settings(overrides={"client": huge}),
        lambda: budget.Ledger(tmp_path / "l.sqlite").reserve(huge, 1.0),
        lambda: loading.parse_indices(huge, 4, "views"),
        lambda: SpecError("field", huge, huge),
        lambda: StorageError(huge),
    ]
    for refuse in refusals:
        with pytest.raises((ValueError, StorageError)) as e:
            made = refuse()
            raise made  # the last two make their error; the others raise it
        assert len(str(e.value)) < 5000, str(e.value)[:200]


def test_windows_reserved_project_names_are_refused():
    for name in ("con", "nul", "aux", "prn", "com1", "lpt1", "com9", "lpt0"):
        with pytest.raises(SpecError, match="Windows device name") as e:
            spec_mod.validate_project_name(name)
        assert e.value.field == "project"
        assert spec_mod.sanitize_project_name(name.upper()) == name + "-project"  # never the device name
    for name in ("console", "con1", "com10", "aux-2", "nul_"):
        assert spec_mod.validate_project_name(name) == name


def test_duplicate_yaml_keys_are_refused(tmp_path):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("render:\n  width: 64\nsubjects:\n  - poses: [a_pose]\nrender:\n  width: 128\n")
    with pytest.raises(SpecError, match="duplicate key 'render'") as e:
        spec_mod.load_spec_file(spec_file)
    assert e.value.field == str(spec_file) and "line 5" in str(e.value)
    (tmp_path / "nested.yaml").write_text("subjects:\n  - poses: [a_pose]\n    height: 1.7\n    height: 1.9\n")
    with pytest.raises(SpecError, match="duplicate key 'height'"):
        spec_mod.load_spec_file(tmp_path / "nested.yaml")
    config = tmp_path / "config.yaml"
    config.write_text("client: local\nrunpod:\n  gpu_class: 24gb\nclient: runpod\n")
    with pytest.raises(settings_mod.SettingsError, match="duplicate key 'client'"):
        settings_mod.load_settings(config)
    (tmp_path / "anchors.yaml").write_text(  # a merge key is no duplicate
        "base: &b {width: 64}\nrender:\n  <<: *b\n  height: 64\nsubjects:\n  - poses: [a_pose]\n")
    assert spec_mod.load_spec_file(tmp_path / "anchors.yaml")["render"] == {"width": 64, "height": 64}


def test_botocore_debug_logs_never_show_the_access_key(store, caplog):  # noqa: F811
    with caplog.at_level(logging.DEBUG):
        store.put_bytes("a/b.png", b"data")
        assert store.get_bytes("a/b.png") == b"data"
        store.check()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Authorization" in text and "<redacted>" in text  # the signed header was logged, blanked
    assert ACCESS_KEY not in text and SECRET_KEY not in text


def test_stalled_download_is_retried_and_resumed_before_the_stall_ends(tmp_path, proxy, bucket):  # noqa: F811
    storage = s3_storage(proxy.url, bucket)  # the default read timeout
    data = os.urandom(300_000)
    m = write_batch(storage, "p", BID, {("openpose", 0, 0): data}, views=1, frames=1)
    key = f"{bucket}/{S.batch_prefix('p', BID)}{m['entries'][0]['files']['openpose']['key']}"
    proxy.reset_counts()
    proxy.stall(key, 100_000, hold_s=45)  # 100 kB, then 45 s of silence (botocore waited 60)
    _, folder = download_batch(storage, "p", BID, tmp_path / "cache", manifest=m)
    assert (folder / m["entries"][0]["files"]["openpose"]["key"]).read_bytes() == data
    gets = [i for i, (method, obj) in enumerate(proxy.log) if method == "GET" and obj == key]
    assert len(gets) == 2 and ("STALL-END", key) not in proxy.log  # retried while the peer was still silent


@pytest.mark.blender
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads the child's /proc environ")
def test_blender_child_gets_no_credentials(tmp_path, monkeypatch):
    from pose_factory import render

    secrets_ = {"CLOUDFLARE_R2_ACCESS_KEY_ID": "AKIDNEVERSHOWN", "CLOUDFLARE_R2_SECRET_ACCESS_KEY": "SKNEVERSHOWN",
                "RUNPOD_API_KEY": "rpa_NEVERSHOWN", "AWS_SECRET_ACCESS_KEY": "AWSNEVERSHOWN"}
    for k, v in secrets_.items():
        monkeypatch.setenv(k, v)
    seen = {}

    def on_progress(event):
        if seen or event.get("state") != "rendering":
            return
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid() \
                        and b"render_batch" in (stat.parent / "cmdline").read_bytes():
                    env = (stat.parent / "environ").read_bytes().split(b"\0")
                    seen.update(kv.decode(errors="replace").split("=", 1) for kv in env if b"=" in kv)
            except (OSError, IndexError, ValueError):
                continue

    render.render_batch(TINY, S.LocalStorage(tmp_path), project="env", on_progress=on_progress)
    assert seen.get("PATH") and "PYTHONPATH" in seen  # the child's environment was read
    assert not set(secrets_) & set(seen)
    assert not any(v in "\0".join(seen.values()) for v in secrets_.values())
