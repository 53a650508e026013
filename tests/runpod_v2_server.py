"""A local stand-in for RunPod serverless (DESIGN.md §5 "RunPod", §6): loopback only.

It is both sides of RunPod's queue service:

- the client-facing v2 API the cloud serves at https://api.runpod.ai/v2 (Bearer API key, 401
  without it): POST /v2/{endpoint}/run and /runsync, GET /v2/{endpoint}/status/{id},
  POST /v2/{endpoint}/cancel/{id}, GET /v2/{endpoint}/health, POST /v2/{endpoint}/purge-queue;
- the worker-facing routes the real `runpod` SDK worker loop talks to on a deployed endpoint
  (job-take long-poll, job-done for results and progress_update, job-stop long-poll for cancels
  and timeouts, ping).

Workers are the real thing: `python pod_worker/handler.py` unmodified, i.e. the real handler under
`runpod.serverless.start`, one process per worker slot, started with the RUNPOD_WEBHOOK_* variables
a deployed worker gets. So queueing (a worker takes a job only when it has a free slot), progress
(the SDK's progress_update posts to job-done with status IN_PROGRESS), error dicts (the SDK's
run_job turns {"error": …} into a failed result) and cancellation (the SDK's stop channel cancels
the job's asyncio task, and the handler kills its Blender child) all go through the SDK's own code.

    with RunPodV2Server(api_key="k", env={"POSE_FACTORY_STORAGE_ROOT": "/tmp/s"}) as srv:
        runpod.api_key, runpod.endpoint_url_base = "k", srv.url_base   # http://127.0.0.1:P/v2
        runpod.Endpoint(srv.endpoint_id).run({...})

    python tests/runpod_v2_server.py --api-key k --storage-root /tmp/s   # serve until Ctrl-C
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "pod_worker" / "handler.py"
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
# the cloud's request body limits (DESIGN.md §5): /run 10 MB, /runsync 20 MB
MAX_BODY = {"run": 10 * 1024 * 1024, "runsync": 20 * 1024 * 1024}
CLIENT_ENV_PREFIXES = ("RUNPOD_", "CLOUDFLARE_R2_", "POSE_FACTORY_R2_", "POSE_FACTORY_S3_")


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class _Job:
    def __init__(self, job_id: str, body: dict):
        self.id, self.input = job_id, body.get("input")
        policy = body.get("policy") or {}
        self.execution_timeout_s = (policy.get("executionTimeout") or 0) / 1000 or None
        self.webhook = body.get("webhook")
        self.status = "IN_QUEUE"
        self.submitted = time.monotonic()
        self.started = self.finished = None
        self.worker_id = None
        self.output = self.error = None
        self.progress = None  # the latest progress_update payload, shown while IN_PROGRESS

    def reply(self) -> dict:
        """The cloud's status body: id and status always; delayTime once taken; executionTime,
        output / error once final; the latest progress as output while running."""
        out = {"id": self.id, "status": self.status}
        now = time.monotonic()
        if self.started is not None:
            out["delayTime"] = _ms(self.started - self.submitted)
            out["workerId"] = self.worker_id
            out["executionTime"] = _ms((self.finished or now) - self.started)
        elif self.status in FINAL:  # cancelled while still queued
            out["delayTime"] = _ms((self.finished or now) - self.submitted)
        if self.status == "IN_PROGRESS" and self.progress is not None:
            out["output"] = self.progress
        if self.status in FINAL:
            if self.output is not None:
                out["output"] = self.output
            if self.error is not None:
                out["error"] = self.error
        return out


class RunPodV2Server:
    """The queue service on 127.0.0.1 (free port) plus `workers` real SDK worker processes."""

    def __init__(self, api_key: str, *, endpoint_id: str = "pose-factory-local", workers: int = 1,
                 env: dict | None = None, runsync_wait_s: float = 90.0, worker_log: Path | None = None,
                 poll_hold_s: float = 1.0):
        self.api_key, self.endpoint_id, self.n_workers = api_key, endpoint_id, workers
        self.worker_key = secrets.token_hex(16)  # what the workers present (RUNPOD_AI_API_KEY)
        self.extra_env = dict(env or {})
        self.runsync_wait_s, self.poll_hold_s = runsync_wait_s, poll_hold_s
        self.worker_log = worker_log
        self.jobs: dict[str, _Job] = {}
        self.queue: list[str] = []  # FIFO of job ids IN_QUEUE
        self.stops: dict[str, set] = {}  # worker id -> job ids it must stop
        self.workers: dict[str, subprocess.Popen] = {}
        self.pings: dict[str, float] = {}  # worker id -> last job-take / ping time
        self.cond = threading.Condition()
        self.requests: deque = deque(maxlen=2000)  # (method, path) of recent requests, for tests
        self._httpd = self._thread = self._timer = None
        self._log_files = []
        self._closing = False
        self._home = None  # the workers' HOME and cwd: no ~/.runpod credentials, nothing in the repo

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url_base(self) -> str:
        """What `runpod.endpoint_url_base` takes (the SDK appends /{endpoint}/run etc.)."""
        return f"http://127.0.0.1:{self.port}/v2"

    def worker_env(self, worker_id: str) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(CLIENT_ENV_PREFIXES) and k not in ("PROJECT_NAME", "POSE_FACTORY_PRICE_PER_S")}
        base = f"{self.url_base}/{self.endpoint_id}"
        env.update(
            PYTHONPATH=str(ROOT), HOME=self._home, RUNPOD_POD_ID=worker_id, RUNPOD_ENDPOINT_ID=self.endpoint_id,
            RUNPOD_AI_API_KEY=self.worker_key, RUNPOD_PING_INTERVAL="2000",
            RUNPOD_WEBHOOK_GET_JOB=f"{base}/job-take/$ID?gpu=LOCAL",
            RUNPOD_WEBHOOK_POST_OUTPUT=f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=LOCAL",
            RUNPOD_WEBHOOK_POST_STREAM=f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=LOCAL",
            RUNPOD_WEBHOOK_PING=f"{base}/ping/$RUNPOD_POD_ID?gpu=LOCAL",
            # the SDK's start-up fitness checks probe the GPU and the internet: not on loopback
            RUNPOD_SKIP_GPU_CHECK="true", RUNPOD_SKIP_AUTO_SYSTEM_CHECKS="true",
            RUNPOD_LOG_LEVEL=os.environ.get("RUNPOD_LOG_LEVEL", "INFO"))
        env.update(self.extra_env)
        return env

    def start(self) -> "RunPodV2Server":
        server = self

        class Handler(_RequestHandler):
            srv = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="runpod-v2", daemon=True)
        self._thread.start()
        self._timer = threading.Thread(target=self._watch_timeouts, name="runpod-v2-timeouts", daemon=True)
        self._timer.start()
        self._home = tempfile.mkdtemp(prefix="runpod-v2-worker-")
        for i in range(self.n_workers):
            wid = f"local-worker-{i}"
            out = subprocess.DEVNULL
            if self.worker_log is not None:
                out = open(f"{self.worker_log}.{i}", "w")
                self._log_files.append(out)
            self.workers[wid] = subprocess.Popen([sys.executable, str(HANDLER)], cwd=self._home,
                                                 env=self.worker_env(wid), stdout=out, stderr=subprocess.STDOUT)
            self.stops[wid] = set()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every worker has polled for a job (its SDK loop is up)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.pings) < self.n_workers:
                dead = [w for w, p in self.workers.items() if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"worker(s) exited: {dead}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"workers not ready after {timeout}s: {sorted(self.pings)}")
                self.cond.wait(min(left, 0.2))

    def stop(self) -> None:
        with self.cond:  # running jobs are cancelled first, so their handlers kill Blender
            running = [j for j in self.jobs.values() if j.status == "IN_PROGRESS"]
        for job in running:
            self.cancel(job.id)
        with self.cond:
            deadline = time.monotonic() + 5
            while any(self.stops.values()) and time.monotonic() < deadline:
                self.cond.wait(0.1)
            self._closing = True
            self.cond.notify_all()
        try:
            import psutil
        except ImportError:
            psutil = None
        leftovers = []
        for p in self.workers.values():
            if psutil is not None and p.poll() is None:
                try:
                    leftovers += psutil.Process(p.pid).children(recursive=True)
                except psutil.Error:
                    pass
            if p.poll() is None:
                p.terminate()  # the SDK's SIGTERM handler stops its loop
        for p in self.workers.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for child in leftovers:  # anything a killed worker left behind (its Blender child)
            try:
                child.kill()
            except psutil.Error:
                pass
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for f in self._log_files:
            f.close()
        if self._home:
            shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self):
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ queue logic
    def submit(self, body: dict) -> _Job:
        job = _Job(f"{uuid.uuid4()}-u1", body)
        with self.cond:
            self.jobs[job.id] = job
            self.queue.append(job.id)
            self.cond.notify_all()
        return job

    def _finish(self, job: _Job, status: str, output=None, error=None) -> None:
        """Under self.cond."""
        job.status, job.finished = status, time.monotonic()
        job.output, job.error = output, error
        if job.id in self.queue:
            self.queue.remove(job.id)
        self.cond.notify_all()

    def cancel(self, job_id: str):
        with self.cond:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            if job.status == "IN_PROGRESS":
                self.stops[job.worker_id].add(job.id)  # the worker's SDK cancels the task
                self._finish(job, "CANCELLED")
            elif job.status == "IN_QUEUE":
                self._finish(job, "CANCELLED")
            return job

    def _watch_timeouts(self) -> None:
        while True:
            with self.cond:
                if self._closing:
                    return
                now = time.monotonic()
                for job in self.jobs.values():
                    if (job.status == "IN_PROGRESS" and job.execution_timeout_s
                            and now - job.started > job.execution_timeout_s):
                        self.stops[job.worker_id].add(job.id)
                        self._finish(job, "TIMED_OUT", error="execution timeout exceeded")
                self.cond.wait(0.2)

    def take(self, worker_id: str) -> _Job | None:
        """Long-poll: the next queued job for this worker, or None after poll_hold_s."""
        deadline = time.monotonic() + self.poll_hold_s
        with self.cond:
            self.pings[worker_id] = time.monotonic()
            self.cond.notify_all()
            while not self.queue and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            if self._closing:
                return None
            job = self.jobs[self.queue.pop(0)]
            job.status, job.started, job.worker_id = "IN_PROGRESS", time.monotonic(), worker_id
            self.cond.notify_all()
            return job

    def stop_signals(self, worker_id: str) -> list:
        deadline = time.monotonic() + self.poll_hold_s
        with self.cond:
            while not self.stops.get(worker_id) and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.cond.wait(left)
            ids = sorted(self.stops.get(worker_id, ()))
            self.stops[worker_id] = set()
            return ids

    def job_done(self, worker_id: str, job_id: str, data: dict) -> None:
        with self.cond:
            job = self.jobs.get(job_id)
            if job is None or job.status != "IN_PROGRESS" or job.worker_id != worker_id:
                return  # late progress or a result for a cancelled / timed-out job: dropped
            if data.get("status") == "IN_PROGRESS":  # progress_update
                job.progress = data.get("output")
                self.cond.notify_all()
                return
            if data.get("error"):
                self._finish(job, "FAILED", output=data.get("output"), error=data["error"])
            else:
                self._finish(job, "COMPLETED", output=data.get("output"))

    def wait_final(self, job: _Job, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while job.status not in FINAL and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def health(self) -> dict:
        with self.cond:
            count = {s: 0 for s in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")}
            for job in self.jobs.values():
                count[job.status] += 1
            busy = {j.worker_id for j in self.jobs.values() if j.status == "IN_PROGRESS"}
            alive = [w for w, p in self.workers.items() if p.poll() is None]
            ready = [w for w in alive if w in self.pings]
            return {"jobs": {"completed": count["COMPLETED"], "failed": count["FAILED"] + count["TIMED_OUT"],
                             "inProgress": count["IN_PROGRESS"], "inQueue": count["IN_QUEUE"], "retried": 0},
                    "workers": {"idle": len([w for w in ready if w not in busy]),
                                "initializing": len(alive) - len(ready), "ready": len(ready),
                                "running": len([w for w in ready if w in busy]), "throttled": 0,
                                "unhealthy": len(self.workers) - len(alive)}}

    def purge(self) -> dict:
        with self.cond:
            removed = list(self.queue)
            for jid in removed:
                self._finish(self.jobs[jid], "CANCELLED")
            return {"removed": len(removed), "status": "completed"}


class _RequestHandler(BaseHTTPRequestHandler):
    srv: RunPodV2Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body=None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        return json.loads(raw)

    def _route(self, method: str) -> None:
        srv = self.srv
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        srv.requests.append((method, url.path))
        if len(parts) < 3 or parts[0] != "v2" or parts[1] != srv.endpoint_id:
            return self._send(404, {"error": "not found"})
        action, rest = parts[2], parts[3:]
        size = int(self.headers.get("Content-Length") or 0)
        if method == "POST" and action in MAX_BODY and size > MAX_BODY[action]:
            while size > 0:  # drain it, so the client reads the answer rather than a reset
                size -= len(self.rfile.read(min(size, 1 << 20)) or b"x" * size)
            return self._send(413, {"error": f"request body of {size} bytes is over the "
                                             f"{MAX_BODY[action]} byte limit of /{action}"})
        try:
            body = self._body() if method == "POST" else None
        except ValueError:
            return self._send(400, {"error": "body is not JSON"})

        if action in ("job-take", "job-done", "job-stop", "job-stream", "ping"):  # the worker side
            if self.headers.get("Authorization") != srv.worker_key:
                return self._send(401, {"error": "unauthorized"})
            return self._worker_route(method, action, rest, body, parse_qs(url.query))

        if self.headers.get("Authorization") != f"Bearer {srv.api_key}":
            return self._send(401, {"error": "Unauthorized"})
        if method == "POST" and action in ("run", "runsync") and not rest:
            if not isinstance(body, dict):
                return self._send(400, {"error": "body must be a JSON object with 'input'"})
            # the cloud queues a body without "input" too; its worker gets the job with no input,
            # which the handler refuses (e.g. the founding documents' unwrapped posture request)
            job = srv.submit(body)
            if action == "run":
                return self._send(200, {"id": job.id, "status": "IN_QUEUE"})
            wait_s = srv.runsync_wait_s
            q = parse_qs(url.query)
            if "wait" in q:
                wait_s = int(q["wait"][0]) / 1000
            srv.wait_final(job, wait_s)
            with srv.cond:
                return self._send(200, job.reply())
        if method == "GET" and action == "status" and len(rest) == 1:
            with srv.cond:
                job = srv.jobs.get(rest[0])
                reply = job.reply() if job else None
            return self._send(200, reply) if reply else self._send(404, {"error": "request does not exist"})
        if method == "POST" and action == "cancel" and len(rest) == 1:
            job = srv.cancel(rest[0])
            if job is None:
                return self._send(404, {"error": "request does not exist"})
            return self._send(200, {"id": job.id, "status": job.status})
        if method == "GET" and action == "health" and not rest:
            return self._send(200, srv.health())
        if method == "POST" and action == "purge-queue" and not rest:
            return self._send(200, srv.purge())
        return self._send(404, {"error": "not found"})

    def _worker_route(self, method, action, rest, body, query):
        srv = self.srv
        if action == "job-take" and method == "GET" and len(rest) == 1:
            job = srv.take(rest[0])
            if job is None:
                return self._send(204)
            return self._send(200, {"id": job.id, "input": job.input})
        if action == "job-stop" and method == "GET" and len(rest) == 1:
            ids = srv.stop_signals(rest[0])
            return self._send(200, {"jobsToStop": ids}) if ids else self._send(204)
        if action in ("job-done", "job-stream") and method == "POST" and len(rest) == 2:
            # the SDK posts a JSON string labelled application/x-www-form-urlencoded
            if action == "job-done" and isinstance(body, dict):
                srv.job_done(rest[0], rest[1], body)
            return self._send(200, {})
        if action == "ping" and method == "GET" and len(rest) == 1:
            with srv.cond:
                srv.pings.setdefault(rest[0], time.monotonic())
            return self._send(200, {})
        return self._send(404, {"error": "not found"})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--endpoint-id", default="pose-factory-local")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--storage-root", required=True)
    args = ap.parse_args(argv)
    with RunPodV2Server(args.api_key, endpoint_id=args.endpoint_id, workers=args.workers,
                        env={"POSE_FACTORY_STORAGE_ROOT": args.storage_root}) as srv:
        print(f"RUNPOD_ENDPOINT_BASE_URL={srv.url_base} RUNPOD_ENDPOINT_ID={srv.endpoint_id}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
