"""The local worker (DESIGN.md §2): one long-lived process in the worker environment, started and
owned by the ComfyUI side (pose_factory.jobs.client.LocalClient), spoken to over stdin/stdout with one
JSON object a line. It runs the same jobs as the RunPod handler (pod_worker.request.execute).

    in:  {"op": "run", "id": "<job id>", "input": {<the handler's input>}}
         {"op": "cancel", "id": "<job id>"}
    out: {"event": "ready", "pid": N}
         {"event": "progress", "id": …, "progress": {"state", "done", "total"}}
         {"event": "done", "id": …, "output": {…} | {"error": "…"}}
         {"event": "cancelled", "id": …}

Jobs run one at a time in arrival order. Each render runs in a Blender child process; one is
started ahead of the next job (a standby that has imported Blender already), so a warm worker
skips Blender's start-up. Cancelling a job kills its child. The worker exits when its stdin
closes, i.e. when its owner is gone. Logs go to stderr; stdout carries the protocol only.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import traceback

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pod_worker.request import clear_leftovers, execute  # noqa: E402
from pose_factory import render  # noqa: E402

_out = sys.stdout
sys.stdout = sys.stderr  # anything else printed goes to the log, never into the protocol
_write_lock = threading.Lock()


def emit(message: dict) -> None:
    with _write_lock:
        _out.write(json.dumps(message) + "\n")
        _out.flush()


class Worker:
    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()
        self.waiting: set[str] = set()  # queued job ids (a cancel removes one)
        self.running: dict[str, asyncio.Task] = {}
        self.standby = None
        self.closing = False

    async def warm(self) -> None:
        if self.standby is None or self.standby.returncode is not None:
            try:
                self.standby = await render.spawn_standby()
            except (OSError, render.RenderError) as e:  # no bpy here: each job reports it
                print(f"no standby render process: {e}", file=sys.stderr)
                self.standby = None

    def take_standby(self):
        proc, self.standby = self.standby, None
        return proc

    async def release(self, proc) -> None:
        """A standby a job did not use: let it exit (its stdin closing tells it), reap it and
        remove its temp folder."""
        if proc is not None:
            await render.end_child(proc)

    def on_message(self, msg) -> None:
        op, job_id = (msg.get("op"), msg.get("id")) if isinstance(msg, dict) else (None, None)
        if op == "run" and isinstance(job_id, str):
            self.waiting.add(job_id)
            self.queue.put_nowait((job_id, msg.get("input")))
        elif op == "cancel" and isinstance(job_id, str):
            if job_id in self.waiting:
                self.waiting.discard(job_id)
                emit({"event": "cancelled", "id": job_id})
            elif job_id in self.running:
                self.running[job_id].cancel()
        else:
            print(f"ignored message: {msg!r}", file=sys.stderr)

    async def run_jobs(self) -> None:
        while True:
            job_id, job_input = await self.queue.get()
            if job_id not in self.waiting:
                continue  # cancelled while queued
            self.waiting.discard(job_id)
            renders = isinstance(job_input, dict) and "spec" in job_input  # posture, extract: no Blender
            if renders:
                await self.warm()
            standby = self.take_standby() if renders else None

            def report(event, job_id=job_id):
                emit({"event": "progress", "id": job_id, "progress": event})

            task = asyncio.ensure_future(execute(job_input, report, standby=standby,
                                                 on_bug=lambda text: print(text, file=sys.stderr)))
            self.running[job_id] = task
            try:
                output = await task
                emit({"event": "done", "id": job_id, "output": output})
            except asyncio.CancelledError:
                emit({"event": "cancelled", "id": job_id})
                if self.closing:
                    raise
            except Exception as e:  # execute returns errors; this is a bug in the worker itself
                traceback.print_exc()
                emit({"event": "done", "id": job_id, "output": {"error": f"local worker: {type(e).__name__}: {e}"}})
            finally:
                del self.running[job_id]
                await self.release(standby)
            await self.warm()


def _read_stdin(loop, worker: Worker, closed: asyncio.Event) -> None:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            print(f"not JSON: {line[:200]!r}", file=sys.stderr)
            continue
        loop.call_soon_threadsafe(worker.on_message, msg)
    loop.call_soon_threadsafe(closed.set)


async def main() -> None:
    worker = Worker()
    closed = asyncio.Event()
    loop = asyncio.get_running_loop()
    clear_leftovers(lambda text: print(text, file=sys.stderr))
    await worker.warm()
    emit({"event": "ready", "pid": os.getpid()})
    threading.Thread(target=_read_stdin, args=(loop, worker, closed), daemon=True).start()
    jobs = asyncio.ensure_future(worker.run_jobs())
    await closed.wait()  # the owner is gone: stop whatever runs (its render child is killed)
    worker.closing = True
    jobs.cancel()
    for task in list(worker.running.values()):
        task.cancel()
    try:
        await jobs
    except asyncio.CancelledError:
        pass
    await worker.release(worker.take_standby())


if __name__ == "__main__":
    asyncio.run(main())
