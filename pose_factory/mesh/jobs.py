"""The founding 3D API's jobs (POST /pose_factory/3d/from-image …): each job's record is a JSON
file in storage (``jobs/3d/<job_id>.json``), so a job's state outlives the ComfyUI process that
started it. A record: {"job_id", "state" (reconstruct.STATES), "message", "project", "batch_id",
"asset_key", "output_format", "created_at", "updated_at", "owner"}. While a job runs, its server
rewrites the record every HEARTBEAT_S; a job not ended whose record is older than STALE_S (its
server is gone: stopped, restarted or killed) is reported failed, with the reason. Several servers
may share one storage: each one's running jobs stay fresh."""
from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import socket
import threading

from ..errors import StorageError
from . import reconstruct

PREFIX = "jobs/3d/"
HEARTBEAT_S = 20.0
STALE_S = 120.0
JOB_ID_RE = re.compile(r"[0-9a-f]{32}")
FINAL = ("completed", "failed")
_OWNER = f"{socket.gethostname()}:{os.getpid()}"  # for the record: which server ran the job
_running: set = set()
_lock = threading.Lock()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _age_s(stamp) -> float:
    try:
        then = datetime.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return float("inf")
    return (datetime.datetime.now(datetime.timezone.utc) - then).total_seconds()


def new_job_id() -> str:
    return secrets.token_hex(16)


def key(job_id: str) -> str:
    return PREFIX + job_id + ".json"


def write(storage, record: dict) -> dict:
    record = dict(record, updated_at=_now())
    storage.put_bytes(key(record["job_id"]), json.dumps(record, sort_keys=True).encode("utf-8"))
    return record


def read(storage, job_id) -> dict | None:
    """The job's record (a job left unfinished by a process that is gone: failed), or None when
    there is no such job (or job_id is not a job id)."""
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
        return None
    try:
        if not storage.exists(key(job_id)):
            return None
        record = json.loads(storage.get_bytes(key(job_id)))
    except (StorageError, OSError, ValueError):
        return None
    with _lock:
        mine = job_id in _running
    if record["state"] not in FINAL and not mine and _age_s(record.get("updated_at")) > STALE_S:
        record = write(storage, dict(record, state="failed", message="the server restarted while the job ran "
                                                                      f"(it was {record['state']}); submit it again"))
    return record


def start(storage, request: dict, run) -> dict:
    """Records a new job (queued) and runs run(on_progress) -> (manifest, made) in a thread; each
    state change and the end (completed with the asset's key, or failed with the message) is written."""
    job_id = new_job_id()
    record = write(storage, {"job_id": job_id, "state": "queued", "message": "", "project": request["project"],
                             "batch_id": None, "asset_key": None, "output_format": request["output_format"],
                             "created_at": _now(), "owner": _OWNER})
    with _lock:
        _running.add(job_id)
    state = {"record": record}
    done = threading.Event()
    lock = threading.Lock()  # one writer of the record at a time: progress, heartbeat, end

    def update(**changes):
        with lock:
            state["record"] = write(storage, dict(state["record"], **changes))

    def on_progress(event):
        s = event.get("state")
        if s in reconstruct.STATES and s != state["record"]["state"] and s not in FINAL:
            update(state=s)

    def heartbeat():
        while not done.wait(HEARTBEAT_S):
            try:
                update()
            except (StorageError, OSError):
                pass  # the next beat tries again

    def work():
        try:
            manifest, _made = run(on_progress)
            from ..storage import batch_prefix

            asset = reconstruct.asset_key(manifest, request["output_format"])
            done.set()
            update(state="completed", message="", project=manifest["project"], batch_id=manifest["batch_id"],
                   asset_key=batch_prefix(manifest["project"], manifest["batch_id"]) + asset)
        except Exception as e:  # every failure ends the job with its message (never a stuck record)
            done.set()
            update(state="failed", message=f"{type(e).__name__}: {e}"[:2000])
        finally:
            done.set()
            with _lock:
                _running.discard(job_id)

    threading.Thread(target=heartbeat, name=f"pose_factory-3d-beat-{job_id[:8]}", daemon=True).start()
    threading.Thread(target=work, name=f"pose_factory-3d-{job_id[:8]}", daemon=True).start()
    return record
