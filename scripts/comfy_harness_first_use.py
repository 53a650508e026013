#!/usr/bin/env python3
"""A new user's first ten minutes (issue 9), checked in a real ComfyUI through the shared harness
(../shared/tools/comfy_harness; CI cannot run ComfyUI, so this is run by hand):

  1. a fresh copy of the pack (the working tree's files, nothing ignored) in its own folder, with
     an older in-pack data/ to move: ComfyUI starts with it alone (--only), its own output/user/temp
     folders, no POSE_FACTORY_CONFIG; data/ moves to <output>/pose_factory when the pack loads;
  2. a render through POST /prompt (Pose Sequence + Pose Preset -> Pose List -> Request Pose Batch
     -> Load Pose Batch -> Preview Image) leaves nothing new under the pack's folder, and the batch
     lies under <output>/pose_factory/storage;
  3. (issue 9.7) the last pose_factory.progress message over /ws is "completed N/N", N = views x frames;
     (21.4) the CLI run from custom_nodes/<pack> lists that batch from ComfyUI's data root (the
     pointer ComfyUI wrote, here in the scratch folder) and writes nothing under the pack;
  4. (9.2) a Load Pose Batch with every widget at its /object_info default runs;
  5. (9.3) a bad joint in Pose From JSON is refused at queue time: HTTP 400, node_errors names the
     node's id, the widget and the joint, no traceback; likewise a bad line in Pose Sequence;
  6. (9.8) 20 refreshes with unknown project names leave the index file and /projects unchanged; a
     5,000-character name gets an error body of under 300 bytes;
  7. (9.5) screenshots (headless Chromium): Pose List grows one slot per link, Pose Sequence, the
     loader's dropdown; and the UI's queue-time error on the bad joint.

    ~/.cache/comfy-harness/venv/bin/python scripts/comfy_harness_first_use.py [-p 8191] [--out out/harness]

Run it with the harness's Python (it has websocket-client). The worker Python comes from
$POSE_FACTORY_WORKER_PYTHON, else this checkout's .venv. Exit 0 when every check passes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("COMFY_HARNESS_TOOLS", ROOT.parent / "shared" / "tools" / "comfy_harness"))
HARNESS = Path(os.environ.get("COMFY_HARNESS", Path.home() / ".cache" / "comfy-harness"))
SKIP = (".venv", ".venv-comfy", ".venv-worker", ".cache", "data", "out")  # a user's clone has none of these
PROJECT = "first-use"
VIEWS, POSES = 2, 4
FAILED: list[str] = []


def check(ok: bool, what: str, detail="") -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {what}{'  ' + str(detail)[:400] if detail and not ok else ''}")
    if not ok:
        FAILED.append(what)


def http(url, data=None, method=None):
    """(status, body bytes)."""
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def files_under(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def fresh_copy(dest: Path) -> None:
    """The pack as a user's clone has it: the working tree's files that git does not ignore."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        if name.split("/")[0] in SKIP or not (ROOT / name).is_file():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)


def run_prompt(url: str, prompt: dict, timeout=600):
    """Queues prompt with a /ws client: (status, body, messages) — messages are (type, data) until
    the prompt finished (or [] when /prompt refused it)."""
    import websocket  # websocket-client, in the harness venv

    client_id = uuid.uuid4().hex
    ws = websocket.create_connection(url.replace("http", "ws") + f"/ws?clientId={client_id}", timeout=timeout)
    try:
        status, body = http(url + "/prompt", {"prompt": prompt, "client_id": client_id})
        if status != 200:
            return status, body, []
        prompt_id = json.loads(body)["prompt_id"]
        messages, deadline = [], time.time() + timeout
        while time.time() < deadline:
            raw = ws.recv()
            if not isinstance(raw, str):
                continue  # binary preview frames
            m = json.loads(raw)
            messages.append((m["type"], m.get("data", {})))
            d = m.get("data", {})
            if m["type"] in ("execution_success", "execution_error", "execution_interrupted") and \
                    d.get("prompt_id") == prompt_id:
                break
        return status, body, messages
    finally:
        ws.close()


def render_prompt() -> dict:
    return {
        "1": {"class_type": "PoseFactoryMannequin", "inputs": {"height": 1.75, "build": "average"}},
        "2": {"class_type": "PoseFactoryPoseSequence", "inputs": {"poses": "a_pose\nwaving mirror hands=open\npointing"}},
        "3": {"class_type": "PoseFactoryPosePreset", "inputs": {"preset": "t_pose", "mirror": False,
                                                               "hands": "preset default"}},
        "4": {"class_type": "PoseFactoryPoseList", "inputs": {"poses_1": ["2", 0], "poses_2": ["3", 0]}},
        "5": {"class_type": "PoseFactoryCameraOrbit", "inputs": {
            "views": VIEWS, "elevation": 10.0, "distance": 0.0, "focal_length": 50.0, "orthographic": False,
            "roll": 0.0, "start_azimuth": 0.0}},
        "6": {"class_type": "PoseFactoryRequestPoseBatch", "inputs": {
            "subject": ["1", 0], "poses": ["4", 0], "cameras": ["5", 0], "width": 64, "height": 64, "depth": True,
            "normal": False, "seg": False, "shaded": True, "depth_range": "batch", "hands": True, "face": True,
            "sdxl_sticks": False, "backend": "local", "project": PROJECT, "force": False}},
        "7": {"class_type": "PoseFactoryLoadPoseFromR2", "inputs": {
            "project": "default", "batch_id": "", "views": "all", "frames": "all", "order": "view_major",
            "hands": True, "face": True, "batch": ["6", 0]}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}},
    }


def defaults_prompt(object_info: dict) -> dict:
    required = object_info["PoseFactoryLoadPoseFromR2"]["input"]["required"]
    inputs = {name: (spec[1] or {}).get("default", spec[0][0] if isinstance(spec[0], list) else None)
              for name, spec in required.items()}
    return {"1": {"class_type": "PoseFactoryLoadPoseFromR2", "inputs": inputs},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


POSE_LIST_JS = """(() => {
  const g = window.app.graph, L = window.LiteGraph;
  const list = L.createNode('PoseFactoryPoseList'); list.pos = [700, 80]; g.add(list);
  const counts = [list.inputs.map((i) => i.name).join(',')];
  for (let k = 0; k < 3; k++) {
    const p = L.createNode('PoseFactoryPosePreset'); p.pos = [80, 40 + 230 * k]; g.add(p);
    p.connect(0, list, list.inputs.length - 1);
    counts.push(list.inputs.map((i) => i.name).join(','));
  }
  const seq = L.createNode('PoseFactoryPoseSequence'); seq.pos = [700, 380]; g.add(seq);
  seq.connect(0, list, list.inputs.length - 1);
  counts.push(list.inputs.map((i) => i.name).join(','));
  g.getNodeById(list.id).disconnectInput(list.inputs.length - 2);
  counts.push(list.inputs.map((i) => i.name).join(','));
  const loader = L.createNode('PoseFactoryLoadPoseFromR2'); loader.pos = [1150, 80]; g.add(loader);
  counts.push('loader batch_id=' + loader.widgets.find((w) => w.name === 'batch_id').value);
  g.setDirtyCanvas(true, true);
  return counts;
})()"""


# after the refused queue: the Pose From JSON node outlined, and ComfyUI's error panel open
ERROR_VIEW_JS = """(async () => {
  const c = window.app.canvas;
  const n = window.app.graph._nodes.find((n) => n.type === 'PoseFactoryPoseFromJSON');
  c.ds.scale = 1.1; c.ds.offset = [-n.pos[0] + 80, -n.pos[1] + 120]; c.setDirty(true, true);
  [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'View details')?.click();
  await new Promise((r) => setTimeout(r, 1000));
})()"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-p", "--port", type=int, default=8191)
    ap.add_argument("--out", default=str(ROOT / "out" / "harness"), help="screenshots and reports")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (pack copy, ComfyUI output)")
    args = ap.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="pf-first-use-"))
    pack = scratch / f"pose-factory-fresh-{os.getpid()}"
    output = scratch / "output"
    env = {k: v for k, v in os.environ.items() if k != "POSE_FACTORY_CONFIG"}
    env.setdefault("POSE_FACTORY_WORKER_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    env["POSE_FACTORY_POINTER_DIR"] = str(scratch / "pointers")  # ComfyUI's record of its data root, for the CLI
    fresh_copy(pack)
    (scratch / "user").mkdir()
    (pack / "data" / "raw").mkdir(parents=True)
    (pack / "data" / "raw" / "from-an-older-version.txt").write_text("kept across the move\n")
    server = [str(TOOLS / "run_server.sh"), "-p", str(args.port)]
    try:
        subprocess.run([*server, "--only", "--strict", "--keep-links", str(pack), "--",
                        "--output-directory", str(output), "--user-directory", str(scratch / "user"),
                        "--temp-directory", str(scratch)], env=env, check=True)

        # 1. the older in-pack data/ moved out when the pack loaded
        moved = output / "pose_factory" / "raw" / "from-an-older-version.txt"
        check(not (pack / "data").exists() and moved.read_text() == "kept across the move\n",
              "an in-pack data/ is moved to <output>/pose_factory when ComfyUI loads the pack")
        before = files_under(pack)

        # 2 + 3. a render leaves nothing under the pack; progress ends at completed N/N
        status, body, messages = run_prompt(url, render_prompt())
        check(status == 200 and messages and messages[-1][0] == "execution_success",
              "the render prompt runs", body[:300] if status != 200 else messages[-1:])
        after = files_under(pack)
        check(after == before, "nothing new under the pack's folder after a render",
              sorted(set(after) ^ set(before))[:10])
        batches = list((output / "pose_factory" / "storage" / "projects" / PROJECT / "batches").glob("*/manifest.json"))
        check(len(batches) == 1, "the batch lies under <output>/pose_factory/storage", batches)
        # 2b. (issue 21.4) the CLI, run from the pack's folder in custom_nodes/ (the harness's link),
        # uses ComfyUI's data root (from the pointer ComfyUI wrote), lists the batch, writes nothing there
        link = HARNESS / "ComfyUI" / "custom_nodes" / pack.name
        listed = subprocess.run([sys.executable, "-m", "pose_factory", "list", PROJECT, "--json"], cwd=link,
                                env=dict(env, PWD=str(link)), capture_output=True, text=True, timeout=120)
        got = json.loads(listed.stdout or "{}")
        check(got.get("data_root") == str(output / "pose_factory") and "pointer" in got.get("data_root_from", "")
              and [b["batch_id"] for b in got.get("batches", [])] == [p.parent.name for p in batches],
              "the CLI run from custom_nodes/<pack> lists the batch ComfyUI rendered, from ComfyUI's pointer",
              (got, listed.stderr[-300:]))
        check(files_under(pack) == before, "the CLI wrote nothing under the pack's folder")
        progress = [d for t, d in messages if t == "pose_factory.progress"]
        last = progress[-1] if progress else {}
        n = VIEWS * POSES
        check((last.get("state"), last.get("done"), last.get("total")) == ("completed", n, n),
              f"the progress counter ends at completed {n}/{n}", last)

        # 4. a new loader with its defaults
        status, body = http(url + "/object_info")
        info = json.loads(body)
        batch_ids = info["PoseFactoryLoadPoseFromR2"]["input"]["required"]["batch_id"]
        bid = batches[0].parent.name if batches else "?"
        check(batch_ids[1].get("default") == f"{PROJECT}/{bid}", "the loader's default batch carries its project",
              batch_ids[1])
        status, body, messages = run_prompt(url, defaults_prompt(info))
        check(status == 200 and messages and messages[-1][0] == "execution_success",
              "a new Load Pose Batch runs with its defaults", body[:300] if status != 200 else messages[-1:])

        # 5. queue-time errors
        prompt = render_prompt()
        prompt["11"] = {"class_type": "PoseFactoryPoseFromJSON",
                        "inputs": {"joints": '{"l_elbow": {"flex": 400}}', "preset": "rest"}}
        prompt["4"]["inputs"]["poses_3"] = ["11", 0]
        prompt["2"]["inputs"]["poses"] = "a_pose\nwavng"
        status, body = http(url + "/prompt", {"prompt": prompt})
        errors = json.loads(body).get("node_errors", {}) if body else {}
        details = [e.get("details", "") for e in errors.get("11", {}).get("errors", [])]
        (out / "queue_time_errors.json").write_text(json.dumps(json.loads(body), indent=1))
        check(status == 400 and details and details[0].startswith("joints - l_elbow flex: got 400, allowed -5..150")
              and "Traceback" not in body.decode(), "a bad joint in Pose From JSON: HTTP 400 naming node 11, "
              "the widget and the joint, no traceback", (status, details))
        seq = [e.get("details", "") for e in errors.get("2", {}).get("errors", [])]
        check(seq and seq[0].startswith("poses - line 2 preset: unknown preset 'wavng'; did you mean 'waving'"),
              "a bad line in Pose Sequence: refused at queue time naming the line", seq)
        print("      " + (details[0][:160] if details else "") + "\n      " + (seq[0][:160] if seq else ""))

        # 6. refresh with unknown names; capped error bodies
        index_file = output / "pose_factory" / "raw" / "index.json"
        digest = hashlib.sha256(index_file.read_bytes()).hexdigest()
        projects = json.loads(http(url + "/pose_factory/projects")[1])["projects"]
        codes = {http(url + "/pose_factory/refresh", {"project": f"nobody-{i}"})[0] for i in range(20)}
        check(codes == {200} and hashlib.sha256(index_file.read_bytes()).hexdigest() == digest
              and json.loads(http(url + "/pose_factory/projects")[1])["projects"] == projects,
              "20 refreshes with unknown names leave the index unchanged", (codes, projects))
        status, body = http(url + "/pose_factory/refresh", {"project": "x" * 5000})
        check(status == 400 and len(body) < 300, "a 5,000-character name gets a short error body",
              (status, len(body), body[:120]))

        # 7. screenshots
        shot = subprocess.run(["node", str(TOOLS / "ui_shot.js"), "--url", url, "--clear", "--no-fit",
                               "--eval", POSE_LIST_JS, "--out", str(out / "pose_list.png"),
                               "--report", str(out / "pose_list.json")], capture_output=True, text=True)
        report = json.loads((out / "pose_list.json").read_text())
        counts = (report.get("evals") or [{}])[0].get("value") or []
        print("      " + "\n      ".join(map(str, counts)))
        check(shot.returncode == 0 and counts[:5] == ["poses_1", "poses_1,poses_2", "poses_1,poses_2,poses_3",
                                                      "poses_1,poses_2,poses_3,poses_4",
                                                      "poses_1,poses_2,poses_3,poses_4,poses_5"]
              and counts[5] == "poses_1,poses_2,poses_3,poses_4" and counts[6] == f"loader batch_id={PROJECT}/{bid}",
              "Pose List shows one empty slot after the last link (screenshot pose_list.png)",
              shot.stdout[-600:] + shot.stderr[-300:])
        (out / "bad_joint_api.json").write_text(json.dumps({"prompt": prompt}))
        subprocess.run(["node", str(TOOLS / "ui_shot.js"), "--url", url, "--clear", "--workflow",
                        str(out / "bad_joint_api.json"), "--queue", "--timeout-ms", "8000", "--allow-console-errors",
                        "--no-fit", "--eval", ERROR_VIEW_JS, "--out", str(out / "bad_joint.png")],
                       capture_output=True, text=True)  # fails by design: the run is refused
        print(f"      screenshots: {out / 'pose_list.png'}, {out / 'bad_joint.png'}")
    finally:
        subprocess.run([*server, "--stop"], check=False)
        link = HARNESS / "ComfyUI" / "custom_nodes" / pack.name
        if link.is_symlink():
            link.unlink()
        if args.keep:
            print(f"scratch kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print("OK: every check passed" if not FAILED else f"FAILED: {len(FAILED)} check(s): {'; '.join(FAILED)}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
