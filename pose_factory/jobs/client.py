"""Job clients (DESIGN.md §3.2): one interface, two backends, the same result.

    result = run_job(spec, project="demo", backend="local",           # or "runpod"; default: config
                     on_progress=print, check_cancel=interrupted)       # -> JobResult
    result.manifest, result.rendered, result.batch_id

- ``local``: the long-lived worker process of DESIGN.md §2 (pod_worker/local_worker.py) in the
  worker environment (config ``worker_python``): started on first use, kept warm, restarted if it
  died. It renders into the configured storage.
- ``runpod``: the serverless endpoint through its v2 HTTP API with plain ``requests``
  (RUNPOD_ENDPOINT_ID, RUNPOD_API_KEY from the environment or .env). A batch with more views than
  ``runpod.max_shard_views`` runs as parallel shard jobs whose parts the client merges into one
  manifest, written last. Every job is reserved in the cost ledger before it is submitted.

Both: an identical spec already in storage is not rendered again unless ``force``; progress
events are ``{"state", "done", "total"}`` (states of DESIGN.md §4); ``check_cancel()`` is called
about ten times a second and whatever it raises cancels the job (its render is killed, no
manifest is written) and is raised again.
"""
from __future__ import annotations

import json
import math
import os
import queue
import subprocess
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import budget
from ..storage import index
from .. import render, settings as settings_mod, spec as spec_mod
from ..storage import batch_lock, read_manifest

STATES = ("queued", "rendering", "extracting", "uploading", "completed")
MESH_STATES = ("generating_images", "reconstructing_3d", "post_processing")  # a reconstruct job's own (one job)
RUNPOD_FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")  # the SDK's own list forgets CANCELLED
CANCEL_CHECK_S = 0.1
RESERVATION_MARGIN_S = 900.0  # a budget reservation expires this long after the job's own timeout
RUN_MAX_BYTES = 10 * 1024 * 1024  # RunPod's /run body limit (DESIGN.md §5)


class JobFailed(RuntimeError):
    """The job ended without a batch; the message carries the worker's own."""


class JobCancelled(JobFailed):
    """The job was cancelled by someone else (RunPod's console, another client)."""


class JobTimeout(JobFailed):
    """The job did not finish within runpod.job_timeout_s; it was cancelled."""


class ClientConfigError(ValueError):
    """A backend is not set up; the message names the missing setting, never a secret's value."""


@dataclass
class JobResult:
    batch_id: str
    project: str
    manifest: dict
    rendered: bool
    backend: str
    job_id: str | None = None
    cost_usd: float = 0.0


# --- what is running in this process (the server's /pose_factory/jobs route shows it) -------------
_active: dict[str, dict] = {}
_active_lock = threading.Lock()


def active_jobs() -> list[dict]:
    with _active_lock:
        return [dict(v) for v in _active.values()]


class _Tracker:
    """Forwards progress to the caller and keeps this job's latest state in active_jobs()."""

    def __init__(self, job_id, batch_id, project, backend, on_progress):
        self.job_id, self.on_progress = job_id, on_progress
        with _active_lock:
            _active[job_id] = {"job_id": job_id, "batch_id": batch_id, "project": project, "backend": backend,
                               "state": "queued", "done": 0, "total": 0, "started_at": time.time()}

    def __call__(self, event: dict) -> None:
        event = {"state": event.get("state", "queued"), "done": int(event.get("done") or 0),
                 "total": int(event.get("total") or 0)}
        with _active_lock:
            if self.job_id in _active:
                _active[self.job_id].update(event)
        if self.on_progress:
            self.on_progress(event)

    def close(self) -> None:
        with _active_lock:
            _active.pop(self.job_id, None)


class _Client:
    backend = ""

    def __init__(self, settings: dict, env: dict):
        self.settings, self.env = settings, env
        self.storage = settings_mod.make_storage(settings, env)

    def run(self, raw_spec: dict, *, project: str | None = None, force: bool = False, on_progress=None,
            check_cancel=None, validate: bool = False) -> JobResult:
        from .. import rigs
        from ..mesh import props  # a prop's mesh (and a rig's file) is stored, and named by its content, before the batch id

        where = spec_mod.validate_project_name(
            project or (raw_spec.get("project") if isinstance(raw_spec, dict) else None) or "default")
        raw_spec = rigs.resolve(props.resolve(raw_spec, self.storage, where), self.storage, where)
        spec, project, bid = render.prepare(raw_spec, project)
        before = read_manifest(self.storage, project, bid)
        if before is not None and not force:
            return JobResult(bid, project, before, False, self.backend)
        check_limits(spec, self.settings, self.backend)
        check_cancel = check_cancel or (lambda: None)
        with self._exclusive(project, bid, force, before, check_cancel) as done:
            if done is not None:  # rendered by another process of this machine while this one waited
                return JobResult(bid, project, done, False, self.backend)
            job_id = uuid.uuid4().hex
            tracker = _Tracker(job_id, bid, project, self.backend, on_progress)
            try:
                tracker({"state": "queued"})
                manifest, cost = self._render(job_id, spec, project, bid, force, tracker, check_cancel,
                                              validate=validate)
            finally:
                tracker.close()
        return JobResult(bid, project, manifest, True, self.backend, job_id, cost)

    @contextmanager
    def _exclusive(self, project, bid, force, before, check_cancel):
        """The local worker takes the batch's lock itself (render.render_batch_async)."""
        yield None

    def _render(self, job_id, spec, project, bid, force, progress, check_cancel, validate=False):
        raise NotImplementedError


def check_limits(spec: dict, settings: dict, backend: str | None = None) -> dict:
    """The normalized spec's estimate (estimate(); with the RunPod cost when the backend, default
    the config's ``client``, is runpod) when it is within the settings' caps on images, megapixels
    and estimated render seconds; else SpecError naming the cap and the value."""
    est = estimate(spec, settings, backend)
    budget.check_job_limits(est["size"], est["seconds"], settings["limits"])
    return est


def render_times(settings: dict) -> budget.RenderTimes:
    """This machine's measured render times, kept in the cost ledger's SQLite file."""
    return budget.RenderTimes(settings["budget"]["ledger_path"])


def estimate(spec: dict, settings: dict, backend: str | None = None, env: dict | None = None) -> dict:
    """A normalized spec's estimate as the node, the CLI and the limits show it (budget.estimate_job):
    on the local backend learned from this machine's measured renders, with the worker's start added
    when this process's local worker is not running; on RunPod the render model (and its cost)."""
    if (backend or settings["client"]) == "runpod":
        return budget.estimate_job(spec, settings["runpod"])
    env = settings_mod.load_env() if env is None else env
    with _clients_lock:
        local = _clients.get(_client_key("local", settings, env))
    return budget.estimate_job(spec, None, times=render_times(settings), warm=local is not None and local.is_warm())


# --- local ---------------------------------------------------------------------------------------
class LocalClient(_Client):
    """The local worker process: one per client, shared by every job of this process."""

    backend = "local"
    READY_TIMEOUT_S = 300.0  # the first start imports Blender and MediaPipe
    CANCEL_TIMEOUT_S = 30.0

    def __init__(self, settings: dict, env: dict):
        super().__init__(settings, env)
        self.python = settings["worker_python"] or None
        self.proc = None
        self._lock = threading.Lock()  # start/restart and stdin writes
        self._queues: dict[str, queue.Queue] = {}
        self._log = Path(settings["storage"]["cache_root"]).parent / "logs" / "local_worker.log"

    def _worker_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_R2_", "POSE_FACTORY_R2_",
                                                                         "POSE_FACTORY_S3_", "RUNPOD_"))}
        env.update(settings_mod.storage_env(self.settings, self.env))
        env["PYTHONPATH"] = str(render.REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("PROJECT_NAME", self.settings["project"])
        return env

    def is_warm(self) -> bool:
        """Whether the worker process is running (a job then skips its start)."""
        return self.proc is not None and self.proc.poll() is None

    def ensure_started(self) -> int:
        """Starts the worker if it is not running (first use, or it died); returns its pid."""
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                return self.proc.pid
            python = self.python or render.worker_python()
            self._log.parent.mkdir(parents=True, exist_ok=True)
            log = open(self._log, "a", encoding="utf-8")
            try:
                proc = subprocess.Popen([python, "-m", "pod_worker.local_worker"], cwd=str(render.REPO_ROOT),
                                        env=self._worker_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log, text=True, bufsize=1, encoding="utf-8")
            except OSError as e:
                raise ClientConfigError(f"worker_python {python!r} cannot be started ({e.strerror or e}): set "
                                        "worker_python in the config to a CPython 3.11 with bpy 5.0.1") from None
            finally:
                log.close()  # the child holds its own handle
            ready = queue.Queue()
            threading.Thread(target=self._read, args=(proc, ready), daemon=True).start()
            try:
                msg = ready.get(timeout=self.READY_TIMEOUT_S)
            except queue.Empty:
                msg = None
            if not msg or msg.get("event") != "ready":
                proc.kill()
                raise JobFailed(f"the local worker did not start ({python}); see {self._log}:\n"
                                + self._log_tail())
            self.proc = proc
            return proc.pid

    def _read(self, proc, ready: queue.Queue) -> None:
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("event") == "ready":
                ready.put(msg)
                continue
            q = self._queues.get(msg.get("id"))
            if q is not None:
                q.put(msg)
        ready.put(None)
        code = proc.wait()
        for q in list(self._queues.values()):
            q.put({"event": "exit", "code": code})

    def _log_tail(self, n: int = 15) -> str:
        try:
            with open(self._log, encoding="utf-8", errors="replace") as fh:
                return "".join(deque(fh, maxlen=n))
        except OSError:
            return ""

    def _send(self, msg: dict) -> None:
        with self._lock:
            try:
                self.proc.stdin.write(json.dumps(msg) + "\n")
                self.proc.stdin.flush()
            except (OSError, ValueError) as e:
                raise JobFailed(f"the local worker is gone ({e}); it restarts on the next job") from None

    def _submit(self, job_id, job_input: dict, progress, check_cancel, estimate_usd: float = 0.0) -> tuple[dict, float]:
        """Runs one job input in the worker, forwarding its progress; (its output, cost 0)."""
        self.ensure_started()
        q = self._queues[job_id] = queue.Queue()
        try:
            self._send({"op": "run", "id": job_id, "input": job_input})
            while True:
                try:
                    check_cancel()
                except BaseException:
                    self._cancel(job_id, q)
                    raise
                try:
                    msg = q.get(timeout=CANCEL_CHECK_S)
                except queue.Empty:
                    continue
                event = msg.get("event")
                if event == "progress":
                    progress(msg["progress"])
                elif event == "done":
                    output = msg.get("output") or {}
                    if "error" in output:
                        raise JobFailed(output["error"])
                    return output, 0.0
                elif event == "cancelled":
                    raise JobCancelled(f"job {job_id} was cancelled in the local worker")
                elif event == "exit":
                    raise JobFailed(f"the local worker exited (code {msg.get('code')}) during the job; it restarts "
                                    f"on the next job. Its log ({self._log}) ends:\n{self._log_tail()}")
        finally:
            self._queues.pop(job_id, None)

    def call(self, job_input: dict, on_progress=None, check_cancel=None) -> dict:
        """Runs one job input that stores nothing (posture, inline extract) in the worker; its
        output (a posture error is the contract's {"status": "error"} answer). JobFailed for an
        {"error": …} output or when the worker fails."""
        return self._submit(uuid.uuid4().hex, job_input, on_progress or (lambda e: None),
                            check_cancel or (lambda: None))[0]

    def _render(self, job_id, spec, project, bid, force, progress, check_cancel, validate=False):
        job_input = {"spec": spec, "project": project, "force": force}
        if validate:
            job_input["validate"] = True
        cold, t0 = not self.is_warm(), time.perf_counter()
        output, _ = self._submit(job_id, job_input, progress, check_cancel)
        seconds = time.perf_counter() - t0
        manifest = read_manifest(self.storage, project, bid)
        if manifest is None:
            raise JobFailed(f"the local worker finished but batch {project}/{bid} has no manifest in storage")
        if output.get("rendered", True) and not validate:  # a batch found in storage meanwhile took no render
            self._record_time(spec, seconds, cold)
        return manifest, 0.0

    def _record_time(self, spec: dict, seconds: float, cold: bool) -> None:
        """This render's measured seconds into render_times(), which the next estimates learn from;
        a ledger that cannot be written costs the lesson, never the render."""
        size = spec_mod.job_size(spec)
        try:
            render_times(self.settings).record(budget.render_key(spec), size["images"],
                                               budget.estimate_render_seconds(size), seconds, cold)
        except (budget.LedgerError, OSError, ValueError) as e:
            budget.log.warning("render time not recorded (the estimates learn from it): %s", e)

    def _cancel(self, job_id: str, q: queue.Queue) -> None:
        """Asks the worker to cancel, then waits until it says the job (and its render) ended."""
        try:
            self._send({"op": "cancel", "id": job_id})
        except JobFailed:
            return
        deadline = time.monotonic() + self.CANCEL_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                msg = q.get(timeout=0.5)
            except queue.Empty:
                continue
            if msg.get("event") in ("cancelled", "done", "exit"):
                return

    def close(self) -> None:
        """Stops the worker (closing its stdin ends it; a running render is killed)."""
        with self._lock:
            proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- RunPod --------------------------------------------------------------------------------------
def plan_shards(n_views: int, max_shard_views: int) -> list[tuple[int, int]]:
    """Views split into the fewest shards of at most max_shard_views, as even as possible."""
    n = max(1, math.ceil(n_views / max_shard_views))
    bounds = [round(i * n_views / n) for i in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


class RunPodClient(_Client):
    """RunPod serverless through the v2 API (DESIGN.md §5): /run, /status, /cancel."""

    backend = "runpod"
    RETRY_STATUS = (429, 500, 502, 503, 504)

    def __init__(self, settings: dict, env: dict, session=None):
        missing = [n for n in ("RUNPOD_API_KEY", "RUNPOD_ENDPOINT_ID") if not env.get(n)]
        if missing:
            raise ClientConfigError(f"the runpod backend needs {' and '.join(missing)} in the environment or .env "
                                    f"(never in a node widget); or choose the local backend")
        super().__init__(settings, env)
        import requests

        rp = settings["runpod"]
        self.rp = rp
        self.endpoint = env["RUNPOD_ENDPOINT_ID"]
        self.url = (env.get("POSE_FACTORY_RUNPOD_URL") or rp["url_base"]).rstrip("/") + "/" + self.endpoint
        self.http = session or requests.Session()
        self.http.headers["Authorization"] = f"Bearer {env['RUNPOD_API_KEY']}"
        self.ledger = budget.Ledger(settings["budget"]["ledger_path"], settings["budget"]["monthly_gpu_limit_usd"])

    def _request(self, method: str, path: str, body=None, attempts: int = 4) -> dict:
        import requests

        for attempt in range(attempts):
            try:
                r = self.http.request(method, f"{self.url}/{path}", json=body, timeout=30)
            except (requests.ConnectionError, requests.Timeout) as e:
                if attempt == attempts - 1:
                    raise JobFailed(f"RunPod {method} {path.split('/')[0]}: cannot reach {self.url} ({type(e).__name__})")
            else:
                if r.status_code == 401:
                    raise JobFailed("RunPod refused the API key (401): check RUNPOD_API_KEY and that it can use "
                                    f"endpoint {self.endpoint}")
                if r.status_code == 404:
                    raise JobFailed(f"RunPod {path.split('/')[0]}: 404 (is RUNPOD_ENDPOINT_ID {self.endpoint!r} right?)")
                if r.status_code not in self.RETRY_STATUS or attempt == attempts - 1:
                    if r.status_code >= 400:
                        raise JobFailed(f"RunPod {path.split('/')[0]}: HTTP {r.status_code}: {r.text[:300]}")
                    return r.json()
            time.sleep(0.5 * 2 ** attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def _exclusive(self, project, bid, force, before, check_cancel):
        """One RunPod job per batch at a time from this machine: the batch's lock (waiting, with
        check_cancel polled), then the batch's manifest if another process made it meanwhile
        (else None, after checking the storage can be written)."""
        with batch_lock(self.storage, project, bid, check=check_cancel, role="submit"):
            yield render.done_meanwhile(self.storage, project, bid, force, before)

    def _estimate(self, spec: dict, views: int) -> float:
        """USD of one job rendering ``views`` of the spec's views (budget.estimate_job)."""
        return budget.estimate_job(spec, self.rp, views)["usd"]

    def _render(self, job_id, spec, project, bid, force, progress, check_cancel, validate=False):
        n_views = spec_mod.n_views(spec)
        shards = plan_shards(n_views, self.rp["max_shard_views"])
        sharded = len(shards) > 1
        jobs = [{"views": v} for v in shards]
        ledger_key = f"{bid}:{job_id}"
        # one reservation for the whole batch, before anything is submitted: a refused batch costs
        # nothing, and of two batches that only together exceed the budget exactly one is refused
        self.ledger.reserve(ledger_key, sum(self._estimate(spec, b - a) for a, b in shards),
                            expires_in_s=self.rp["job_timeout_s"] + RESERVATION_MARGIN_S)
        timeout_ms = int(self.rp["job_timeout_s"] * 1000)
        try:
            for j in jobs:
                job_input = {"spec": spec, "project": project, "force": force}
                if validate and not sharded:  # a sharded batch's manifest is the client's: not validated
                    job_input["validate"] = True
                if sharded:
                    job_input["shard"] = {"views": list(j["views"])}
                reply = self._request("POST", "run", {"input": job_input, "policy": {"executionTimeout": timeout_ms}})
                j["id"], j["status"] = reply["id"], {"status": reply.get("status", "IN_QUEUE")}
            self._wait(jobs, progress, check_cancel)
        except BaseException:
            self._cancel_all(jobs)
            raise
        finally:
            self._settle(ledger_key, jobs)
        outputs = [j["status"].get("output") or {} for j in jobs]
        cost = round(sum(j.get("cost", 0.0) for j in jobs), 6)
        if not sharded:
            manifest = read_manifest(self.storage, project, bid)
            if manifest is None:
                raise JobFailed(f"RunPod job {jobs[0]['id']} completed but batch {project}/{bid} has no manifest "
                                "in storage: do the worker and this client use the same bucket?")
            return manifest, cost
        progress({"state": "uploading", "done": len(jobs), "total": len(jobs)})
        timings = {}  # the shards' seconds added up (worker time, not wall time)
        for o in outputs:
            for k, v in (o.get("timings") or {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    timings[k] = round(timings.get(k, 0.0) + v, 3)
        parts = render.write_shard_depth(self.storage, project, bid, [o["shard"] for o in outputs])
        manifest = render.build_batch_manifest(spec, project, bid, parts, timings,
                                               {"backend": "runpod", "estimate_usd": cost, "jobs": len(jobs)})
        render.commit_batch(self.storage, manifest)  # checks every shard's files, then writes it last
        progress({"state": "completed", "done": len(jobs), "total": len(jobs)})
        return manifest, cost

    def call(self, job_input: dict, on_progress=None, check_cancel=None) -> dict:
        """A job that stores nothing (posture, inline extract) on the endpoint, as LocalClient.call:
        its estimate (inline_seconds × runpod.speed_factor, start-up and idle allowances) reserved
        in the budget ledger first and settled from its status, its progress forwarded; its output.
        SpecError when the request is over RunPod's /run body limit (10 MB): send big images as a
        stored extract job (uploaded to storage) instead."""
        from ..errors import SpecError

        size = len(json.dumps({"input": job_input}))
        if size > RUN_MAX_BYTES:
            raise SpecError("images", f"{size} bytes of request", f"at most {RUN_MAX_BYTES} bytes on RunPod's /run (its "
                            "limit): smaller images, fewer per job, or a stored extract job (images uploaded to "
                            "storage: pose_factory.extract.client.request_extract)")
        rp = self.rp
        usd = budget.estimate_cost(inline_seconds(job_input) * rp["speed_factor"], None, rp["gpu_class"],
                                   rp["idle_timeout_s"], rp["startup_s"])
        return self._submit(uuid.uuid4().hex, job_input, on_progress or (lambda e: None),
                            check_cancel or (lambda: None), usd)[0]

    def _submit(self, job_id, job_input: dict, progress, check_cancel, estimate_usd: float = 0.0) -> tuple[dict, float]:
        """One RunPod job of any kind (reconstruct, extract, posture): its estimate reserved in the
        budget ledger first, settled from its status after; (its output, cost)."""
        ledger_key = f"{job_kind(job_input)}:{job_id}"
        self.ledger.reserve(ledger_key, estimate_usd, expires_in_s=self.rp["job_timeout_s"] + RESERVATION_MARGIN_S)
        job = {"views": [0, 1], "status": {"status": "IN_QUEUE"}}
        try:
            reply = self._request("POST", "run", {"input": job_input,
                                                  "policy": {"executionTimeout": int(self.rp["job_timeout_s"] * 1000)}})
            job["id"], job["status"] = reply["id"], {"status": reply.get("status", "IN_QUEUE")}
            self._wait([job], progress, check_cancel)
        except BaseException:
            self._cancel_all([job])
            raise
        finally:
            self._settle(ledger_key, [job])
        return job["status"].get("output") or {}, round(job.get("cost", 0.0), 6)

    def _wait(self, jobs: list, progress, check_cancel) -> None:
        deadline = time.monotonic() + self.rp["job_timeout_s"] + 60  # the policy times out first
        next_poll = 0.0
        while True:
            check_cancel()
            now = time.monotonic()
            if now >= next_poll:
                for j in jobs:
                    if j["status"]["status"] not in RUNPOD_FINAL:
                        j["status"] = self._request("GET", f"status/{j['id']}")
                self._check_final(jobs)
                if all(j["status"]["status"] == "COMPLETED" for j in jobs):
                    return
                progress(_combined_progress(jobs))
                next_poll = now + self.rp["poll_interval_s"]
            if now > deadline:
                raise JobTimeout(f"RunPod job(s) {', '.join(j['id'] for j in jobs)} did not finish within "
                                 f"{self.rp['job_timeout_s']} s (runpod.job_timeout_s); cancelled")
            time.sleep(CANCEL_CHECK_S)

    @staticmethod
    def _check_final(jobs: list) -> None:
        for j in jobs:
            st = j["status"]
            status, output = st["status"], st.get("output")
            message = st.get("error") or (output.get("error") if isinstance(output, dict) else None)
            where = f"RunPod job {j['id']}" + (f" (views {j['views'][0]}..{j['views'][1] - 1})" if len(jobs) > 1 else "")
            if status == "COMPLETED" and message:
                status = "FAILED"
            if status == "CANCELLED":
                raise JobCancelled(f"{where} was cancelled" + (f": {message}" if message else ""))
            if status == "TIMED_OUT":
                raise JobTimeout(f"{where} timed out on RunPod (execution timeout)" + (f": {message}" if message else ""))
            if status == "FAILED":
                raise JobFailed(f"{where} failed: {message or 'no message from the worker'}")

    def _cancel_all(self, jobs: list) -> None:
        for j in jobs:
            if "id" in j and j["status"]["status"] not in RUNPOD_FINAL:
                try:
                    j["status"] = dict(j["status"], **self._request("POST", f"cancel/{j['id']}", attempts=2))
                except JobFailed:
                    pass

    def _settle(self, ledger_key: str, jobs: list) -> None:
        """The reservation becomes the sum of the jobs' estimates from their statuses; released
        when no job started."""
        started = [j for j in jobs if "executionTime" in j.get("status", {}) or "delayTime" in j.get("status", {})]
        if not started:
            self.ledger.release(ledger_key)
            return
        details = []
        for j in started:
            usd, d = budget.estimate_from_status(j["status"], self.rp["gpu_class"], self.rp["idle_timeout_s"],
                                                 self.rp["startup_s"])
            j["cost"] = usd
            details.append(dict(d, views=list(j["views"])))
        self.ledger.settle(ledger_key, sum(j["cost"] for j in started), {"jobs": details})


def _combined_progress(jobs: list) -> dict:
    """One event for several shard jobs: the least advanced state, and images done of all."""
    states, done, total = [], 0.0, 0
    for j in jobs:
        st = j["status"]
        out = st.get("output") if isinstance(st.get("output"), dict) else {}
        state = "completed" if st["status"] == "COMPLETED" else out.get("state") or (
            "rendering" if st["status"] == "IN_PROGRESS" else "queued")
        state = state if state in STATES or (len(jobs) == 1 and state in MESH_STATES) else "rendering"
        n = out.get("total") or 0
        frac = {"queued": 0.0, "rendering": 0.8 * (out.get("done") or 0) / max(n, 1), "extracting": 0.8,
                "uploading": 0.8 + 0.2 * (out.get("done") or 0) / max(n, 1), "completed": 1.0}.get(state, 0.0)
        states.append(state)
        images = (j["views"][1] - j["views"][0])
        done, total = done + frac * images, total + images
    if len(jobs) == 1 and states[0] != "completed":
        out = jobs[0]["status"].get("output") if isinstance(jobs[0]["status"].get("output"), dict) else {}
        return {"state": states[0], "done": out.get("done") or 0, "total": out.get("total") or 0}
    return {"state": min(states, key=STATES.index), "done": int(done), "total": total}


def job_kind(job_input: dict) -> str:
    """A job input's kind, for the ledger and the jobs list: the JobSpec's, else posture or extract."""
    from ..extract.posture import is_posture_input

    spec = job_input.get("spec") if isinstance(job_input, dict) else None
    if isinstance(spec, dict):
        return str(spec.get("kind", "pose_batch"))
    return "posture" if is_posture_input(job_input) else "extract" if "extract" in job_input else "job"


def inline_seconds(job_input: dict) -> float:
    """A worker's execution seconds for a job that stores nothing (posture: 2 images; inline extract:
    its images, a photo fit more): the RunPod reservation's estimate."""
    from ..extract import batch

    req = job_input.get("extract") if isinstance(job_input, dict) else None
    if not isinstance(req, dict):
        return batch.estimate_seconds(2)
    n = len(req.get("images") or [])
    return batch.estimate_seconds(n) + (batch.FIT_S * n if req.get("fit") else 0.0)


# --- one client per backend per process, kept warm ------------------------------------------------
_clients: dict = {}
_clients_lock = threading.Lock()
BACKENDS = {"local": LocalClient, "runpod": RunPodClient}


def _client_key(backend: str, settings: dict, env: dict) -> tuple:
    return (backend, json.dumps(settings, sort_keys=True),
            tuple(sorted((k, v) for k, v in env.items() if k.startswith(("RUNPOD_", "CLOUDFLARE_R2_", "POSE_FACTORY_")))))


def get_client(backend: str, settings: dict, env: dict):
    if backend not in BACKENDS:
        raise ClientConfigError(f"backend: got {backend!r}, allowed: {', '.join(BACKENDS)}")
    key = _client_key(backend, settings, env)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = BACKENDS[backend](settings, env)
        return _clients[key]


def close_clients() -> None:
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for c in clients:
        if hasattr(c, "close"):
            c.close()


def run_worker_job(job_input: dict, *, backend: str = "local", settings: dict | None = None, env: dict | None = None,
                   on_progress=None, check_cancel=None) -> dict:
    """A job that stores nothing (posture, inline extract: pod_worker/request.py) in the local
    worker, where MediaPipe lives (never in this process), or on the RunPod endpoint (budget
    reserved and settled, progress forwarded, cancelled with check_cancel); its output (a posture
    error is the contract's {"status": "error"} answer). Raises ClientConfigError, SpecError (over
    RunPod's body limit), BudgetExceeded, JobFailed (with the worker's message when it cannot
    extract), or what check_cancel raised."""
    settings = settings_mod.load_settings() if settings is None else settings
    env = settings_mod.load_env() if env is None else env
    return get_client(backend or "local", settings, env).call(job_input, on_progress, check_cancel)


def run_stored_job(job_input: dict, *, backend: str | None = None, settings: dict, env: dict, on_progress=None,
                   check_cancel=None, estimate_usd: float = 0.0) -> JobResult:
    """A job whose worker stores a batch from its sources (reconstruct, stored extract; the images
    already uploaded or at URLs), on either backend: its progress, cancel, budget (estimate_usd
    reserved on RunPod) and cost; the batch's manifest read back and recorded in the local index."""
    which = backend or settings["client"]
    client = get_client(which, settings, env)
    job_id = uuid.uuid4().hex
    tracker = _Tracker(job_id, None, job_input.get("project"), which, on_progress)
    try:
        tracker({"state": "queued"})
        output, cost = client._submit(job_id, job_input, tracker, check_cancel or (lambda: None),
                                      estimate_usd if which == "runpod" else 0.0)
    finally:
        tracker.close()
    manifest = read_manifest(client.storage, output["project"], output["batch_id"])
    if manifest is None:
        raise JobFailed(f"the {job_kind(job_input)} job finished but batch {output['project']}/{output['batch_id']} "
                        "has no manifest in storage: do the worker and this client use the same storage?")
    try:
        index.record(settings["storage"]["cache_root"], manifest)
    except OSError:
        pass  # the index is a convenience; the batch is in storage
    return JobResult(manifest["batch_id"], manifest["project"], manifest, bool(output.get("made")), which, job_id, cost)


def run_job(spec: dict, *, project: str | None = None, force: bool = False, backend: str | None = None,
            settings: dict | None = None, env: dict | None = None, on_progress=None,
            check_cancel=None, validate: bool = False) -> JobResult:
    """Renders spec (or finds it in storage) with the configured or given backend; records the
    batch in the local index. validate: a batch rendered now gets the worker's render validation
    in its manifest (needs the shaded and keypoints passes; not for a sharded RunPod batch). Raises SpecError, ClientConfigError, BudgetExceeded, JobFailed
    (JobCancelled, JobTimeout), StorageError, or what check_cancel raised."""
    settings = settings_mod.load_settings() if settings is None else settings
    env = settings_mod.load_env() if env is None else env
    project = project or (spec.get("project") if isinstance(spec, dict) else None) or settings["project"]
    result = get_client(backend or settings["client"], settings, env).run(
        spec, project=project, force=force, on_progress=on_progress, check_cancel=check_cancel, validate=validate)
    try:
        index.record(settings["storage"]["cache_root"], result.manifest)
    except OSError:
        pass  # the index is a convenience; the batch is in storage
    return result


__all__ = ["run_job", "run_worker_job", "run_stored_job", "check_limits", "estimate", "render_times", "get_client", "close_clients", "active_jobs", "plan_shards", "JobResult", "JobFailed",
           "JobCancelled", "JobTimeout", "ClientConfigError", "LocalClient", "RunPodClient"]
