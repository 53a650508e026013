"""The deployment files (issue 3 part 5): the worker's Dockerfile, the build-and-push script and
the RunPod Hub files. No Docker engine or cloud account is used: the files are parsed and checked
against the code they deploy (what the handler imports, the environment it reads, its input
validation), and the build script is run without its variables."""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pose_factory import spec as spec_mod

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / ".runpod" / "hub.json"
TESTS = ROOT / ".runpod" / "tests.json"
DOCKERFILE = ROOT / "Dockerfile"
BUILD = ROOT / "scripts" / "build_and_push.sh"
BUILD_LOCAL = ROOT / "scripts" / "build_image_local.sh"
# the Hub's categories (RunPod Hub publishing guide)
HUB_CATEGORIES = {"audio", "embedding", "language", "video", "image"}


def load(path: Path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def env_vars_read(path: Path) -> set[str]:
    """Every NAME in os.environ[...] / os.environ.get(...) / env[...] / env.get(...) in a file."""
    text = path.read_text()
    pat = r"""(?:os\.environ|\benv)(?:\.get\(\s*|\[\s*)["']([A-Z][A-Z0-9_]+)["']"""
    names = set(re.findall(pat, text))
    # names listed for a check, e.g. `for n in ("A", "B", ...) if not env.get(n)`
    for group in re.findall(r"for \w+ in \(([^)]*)\)\s*if not env\.get", text):
        names |= set(re.findall(r"""["']([A-Z][A-Z0-9_]+)["']""", group))
    return names


# --- hub.json ---------------------------------------------------------------------------------------
def test_hub_json_has_the_hubs_required_keys():
    hub = load(HUB)
    for key in ("title", "description", "type", "category", "config"):
        assert hub.get(key), f"hub.json: {key} missing or empty"
    assert hub["type"] == "serverless"
    assert hub["category"] in HUB_CATEGORIES
    cfg = hub["config"]
    assert cfg["runsOn"] == "GPU"
    assert isinstance(cfg["containerDiskInGb"], int) and 10 <= cfg["containerDiskInGb"] <= 100
    assert cfg["gpuCount"] == 1
    pools = [p.strip() for p in cfg["gpuIds"].split(",")]
    # the cheap 16 GB and 24 GB classes of DESIGN.md §5, nothing bigger
    assert pools and set(pools) <= {"AMPERE_16", "AMPERE_24", "ADA_24"}, pools
    for v in cfg.get("allowedCudaVersions", []):
        assert re.fullmatch(r"\d+\.\d+", v), v


def test_hub_env_entries_are_form_fields():
    env = load(HUB)["config"]["env"]
    keys = [e["key"] for e in env]
    assert len(keys) == len(set(keys)), "duplicate env keys"
    for e in env:
        assert set(e) == {"key", "input"}, f"{e['key']}: a form field, not a fixed value"
        field = e["input"]
        assert field.get("name") and field.get("description"), e["key"]
        assert field.get("type") in ("string", "number", "boolean"), e["key"]
        # no secret ships in the repository
        if "SECRET" in e["key"] or "KEY" in e["key"]:
            assert field.get("default", "") == "", f"{e['key']} has a default value"


def test_every_r2_variable_the_worker_reads_is_a_hub_input():
    read = set()
    for path in [ROOT / "pose_factory" / "storage" / "s3.py", *sorted((ROOT / "pod_worker").rglob("*.py"))]:
        read |= env_vars_read(path)
    # the scan finds what the brief's grep finds (a failing guard if the code's style changes)
    assert {"CLOUDFLARE_R2_ACCESS_KEY_ID", "CLOUDFLARE_R2_SECRET_ACCESS_KEY", "POSE_FACTORY_R2_BUCKET",
            "CLOUDFLARE_R2_ACCOUNT_ID", "POSE_FACTORY_S3_ENDPOINT_URL", "PROJECT_NAME"} <= read, read
    # set by RunPod itself, or for local runs only (the Hub's own test sets the storage root)
    platform_or_local = {"RUNPOD_WEBHOOK_POST_OUTPUT", "RUNPOD_POD_ID", "POSE_FACTORY_STORAGE_ROOT"}
    hub_keys = {e["key"] for e in load(HUB)["config"]["env"]}
    missing = sorted(read - platform_or_local - hub_keys)
    assert not missing, f"read by the worker but not a hub.json input: {missing}"
    for name in ("POSE_FACTORY_R2_BUCKET", "CLOUDFLARE_R2_ACCOUNT_ID", "CLOUDFLARE_R2_ACCESS_KEY_ID",
                 "CLOUDFLARE_R2_SECRET_ACCESS_KEY", "PROJECT_NAME"):
        assert name in hub_keys, name


def test_hub_defaults_are_valid_for_the_worker(tmp_path):
    env = {e["key"]: e["input"] for e in load(HUB)["config"]["env"]}
    spec_mod.validate_project_name(env["PROJECT_NAME"]["default"])
    price = env["POSE_FACTORY_PRICE_PER_S"]["default"]
    assert 0 <= price < 0.01
    # an R2 field left at its default means "no R2": the worker falls back to a folder, not to a
    # half-configured bucket
    from pod_worker.storage_env import storage_from_env
    from pose_factory.storage import LocalStorage

    defaults = {k: str(v["default"]) for k, v in env.items()}
    assert isinstance(storage_from_env(dict(defaults, POSE_FACTORY_STORAGE_ROOT=str(tmp_path))),
                      LocalStorage)


# --- tests.json -------------------------------------------------------------------------------------
def test_tests_json_has_a_small_pose_batch_job_with_a_timeout():
    t = load(TESTS)
    assert t["tests"], "no test job"
    for case in t["tests"]:
        assert case["name"] and isinstance(case["input"], dict)
        assert isinstance(case["timeout"], int) and 10_000 <= case["timeout"] <= 900_000  # milliseconds
    job = t["tests"][0]["input"]
    spec = job["spec"]
    assert spec.get("kind", "pose_batch") == "pose_batch"
    norm = spec_mod.normalize_spec(spec)
    assert norm["render"]["width"] * norm["render"]["height"] <= 256 * 256, "keep the Hub's test small"
    cfg = t["config"]
    assert cfg["gpuTypeId"] and cfg["gpuCount"] == 1
    for e in cfg["env"]:
        assert set(e) == {"key", "value"}
        assert "SECRET" not in e["key"] and "ACCESS_KEY" not in e["key"], "no credentials in tests.json"


def test_tests_json_input_passes_the_handlers_validation(monkeypatch):
    pytest.importorskip("runpod")  # the handler imports the SDK (the worker environment)
    from pod_worker.request import InputError, parse_input

    monkeypatch.delenv("PROJECT_NAME", raising=False)
    job = load(TESTS)["tests"][0]["input"]
    req = parse_input(copy.deepcopy(job))
    assert req["kind"] == "pose_batch" and req["force"] is False
    assert req["project"] == job.get("project")
    # the same validation refuses a broken copy: the check above can fail
    bad = copy.deepcopy(job)
    bad["spec"]["render"]["width"] = 100  # not a multiple of 8
    with pytest.raises(InputError, match="width"):
        parse_input(bad)


def test_tests_json_matches_the_smoke_input():
    """The Hub's job is the repository's own smoke job (pod_worker/test_input.json), so a change
    to one is a change to both."""
    hub_job = load(TESTS)["tests"][0]["input"]
    smoke = load(ROOT / "pod_worker" / "test_input.json")["input"]
    assert spec_mod.normalize_spec(hub_job["spec"]) == spec_mod.normalize_spec(smoke["spec"])


# --- Dockerfile -------------------------------------------------------------------------------------
def dockerfile_stages() -> list[dict]:
    """The Dockerfile's stages in order: {"name", "base", "ins": [(INSTRUCTION, args), ...]}, with
    the ARGs declared before the first FROM (and their defaults) under stage index -1's "args"."""
    stages, head_args = [], {}
    for word, args in dockerfile_instructions():
        if word == "FROM":
            base, _, name = args.partition(" AS ") if " AS " in args else args.partition(" as ")
            stages.append({"name": name.strip() or None, "base": base.strip(), "ins": []})
        elif not stages:
            if word == "ARG":
                key, _, default = args.partition("=")
                head_args[key.strip()] = default.strip()
        else:
            stages[-1]["ins"].append((word, args))
    for s in stages:
        s["base"] = re.sub(r"\$\{?(\w+)\}?", lambda m: head_args.get(m.group(1), m.group(0)), s["base"])
    return stages, head_args


def final_chain() -> list[dict]:
    """The final stage and the stages it is built FROM, oldest first: what the image contains."""
    stages, _ = dockerfile_stages()
    by_name = {s["name"]: s for s in stages if s["name"]}
    chain, stage = [], stages[-1]
    while stage is not None:
        chain.insert(0, stage)
        stage = by_name.get(stage["base"])
    return chain


def apt_packages(stage: dict) -> list[str]:
    out = []
    for word, args in stage["ins"]:
        if word == "RUN":
            for m in re.finditer(r"apt-get install ((?:[^&|;])*)", args):
                out += [w for w in m.group(1).split() if not w.startswith("-")]
    return out


def requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\[<>=!~; ]", line)[0].lower().replace("_", "-"))
    return names


OPENCV = re.compile(r"opencv(-contrib)?-python(-headless)?$")


def test_dockerfile_base_is_debian_12_with_its_own_python_311():
    stages, head_args = dockerfile_stages()
    # the base is a build argument: the registry's Debian 12, or the local debootstrap base
    assert re.fullmatch(r"(docker\.io/library/)?debian:bookworm(-slim)?", head_args.get("BASE_IMAGE", "")), \
        head_args
    names = {s["name"] for s in stages}
    for s in stages:  # every stage starts from the base or from an earlier stage
        assert s["base"] == head_args["BASE_IMAGE"] or s["base"] in names, s["base"]
    text = " ".join(f"{w} {a}" for s in stages for w, a in s["ins"])
    assert "python3.11" in apt_packages(final_chain()[0]), "Debian's CPython 3.11 in the runtime"
    assert "python3.11 -m venv" in text
    assert not re.search(r"python3\.(?!11\b)\d+", text), "only CPython 3.11 (bpy 5.0.1)"
    assert re.search(r"pip install (?:[^&]* )?-r \S*requirements\.txt", text)
    assert "pod_worker/requirements.txt" in text
    # bpy's and OpenCV's system libraries (readelf -d of the venv's ELF files) in the image
    runtime = [p for s in final_chain() for p in apt_packages(s)]
    for pkg in ("libx11-6", "libxi6", "libxfixes3", "libxrender1", "libxkbcommon0", "libsm6", "libice6",
                "libxt6", "libxext6", "libglib2.0-0", "ca-certificates"):
        assert pkg in runtime, pkg
    # libGL.so.1: the glvnd dispatch libraries alone, not Debian's libgl1 with its Mesa/LLVM stack
    assert not {"libgl1", "libglx0", "libgl1-mesa-dri", "libglx-mesa0"} & set(runtime), runtime
    build = next(s for s in stages if s["name"] == "build")
    assert any(w == "RUN" and re.search(r"apt-get download libgl1 libglx0 libglvnd0\b", a) for w, a in build["ins"])
    cmd = [a for w, a in final_chain()[-1]["ins"] if w == "CMD"]
    assert cmd and json.loads(cmd[-1]) == ["python", "-u", "pod_worker/handler.py"]


def test_dockerfile_uses_no_ppa_or_third_party_apt_source():
    text = DOCKERFILE.read_text()
    for bad in ("add-apt-repository", "ppa:", "software-properties-common", "sources.list", "apt-key"):
        assert bad not in text, bad


def test_final_image_has_no_compilers_or_headers():
    tools = re.compile(r"(.*-dev|build-essential|gcc(-\d+)?|g\+\+(-\d+)?|cpp|clang.*|binutils.*|make|cmake)$")
    for stage in final_chain():
        bad = [p for p in apt_packages(stage) if tools.fullmatch(p)]
        assert not bad, f"stage {stage['name']!r} is part of the final image and installs {bad}"
    # the final stage takes only the venv and the unpacked glvnd libraries from the build stage
    from_build = sorted(a.split()[1:] for w, a in final_chain()[-1]["ins"] if w == "COPY" and a.startswith("--from"))
    assert from_build == [["/opt/glvnd/usr/", "/usr/"], ["/opt/venv", "/opt/venv"]], from_build


def test_worker_set_names_one_opencv_and_the_dockerfile_adds_none():
    names = requirement_names(ROOT / "pod_worker" / "requirements.txt")
    assert len([n for n in names if OPENCV.match(n)]) == 1, names
    text = " ".join(a for w, a in dockerfile_instructions() if w == "RUN")
    assert not re.search(r"pip install[^&]*opencv", text), "OpenCV comes from requirements.txt only"


def test_the_opencv_of_the_worker_set_is_the_one_mediapipe_requires():
    """Two OpenCV distributions share one cv2/ folder; MediaPipe's own metadata says which one it
    pulls in, so the worker set must name that one and no other."""
    import importlib.metadata as md

    try:
        mp_reqs = md.requires("mediapipe") or []
    except md.PackageNotFoundError:
        pytest.skip("MediaPipe is not installed here (the worker environment has it)")
    mp_opencv = {re.split(r"[\[<>=!~; ]", r)[0].lower() for r in mp_reqs if "opencv" in r.lower()}
    ours = {n for n in requirement_names(ROOT / "pod_worker" / "requirements.txt") if OPENCV.match(n)}
    assert mp_opencv, mp_reqs
    assert len(ours | mp_opencv) == 1, f"the worker venv would hold {sorted(ours | mp_opencv)}"


def test_the_smoke_input_is_where_the_sdk_looks_when_run_without_arguments():
    runpod = pytest.importorskip("runpod")
    import inspect

    from runpod.serverless.modules import rp_local

    # the SDK (the oracle) opens "test_input.json" relative to the working directory
    assert 'open("test_input.json"' in inspect.getsource(rp_local), runpod.__version__
    final = [i for s in final_chain() for i in s["ins"]]
    workdir = [a for w, a in final if w == "WORKDIR"][-1]
    copies = [a.split() for w, a in final if w == "COPY" and not a.startswith("--")]
    dests = {os.path.normpath(os.path.join(workdir, dest)) for *src, dest in copies
             if src == ["pod_worker/test_input.json"]}
    assert os.path.join(workdir, "test_input.json") in dests, (workdir, copies)
    cmd = [a for w, a in final if w == "CMD"][-1]
    assert "--test_input" not in cmd and "--rp_serve_api" not in cmd  # a plain start reads the file


def test_the_image_runs_as_a_non_root_user():
    _, head_args = dockerfile_stages()
    final = final_chain()[-1]["ins"]
    args = dict(head_args, **{a.partition("=")[0]: a.partition("=")[2] for w, a in final if w == "ARG"})
    users = [re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), a) for w, a in final if w == "USER"]
    assert users and users[-1] not in ("", "root", "0") and not users[-1].startswith("0:"), users
    assert any(w == "RUN" and re.search(rf"useradd .*\b{re.escape(users[-1])}$", a) for w, a in final)


def _first_party_imports() -> set[str]:
    """Top-level packages of this repository that the handler and its job modules import, found
    by importing them in a fresh interpreter."""
    code = (
        "import sys, json, importlib\n"
        "import pod_worker.handler as h\n"
        "from pod_worker.jobs import MODULES\n"
        "for m in MODULES.values(): importlib.import_module(m)\n"
        f"root = {str(ROOT)!r}\n"
        "files = {n: getattr(m, '__file__', None) or '' for n, m in list(sys.modules.items())}\n"
        "tops = {n.split('.')[0] for n, f in files.items()  # the repo's own code, not its venv\n"
        "        if f.startswith(root + '/') and 'site-packages' not in f}\n"
        "print(json.dumps(sorted(tops)))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_dockerfile_copies_every_package_the_handler_needs():
    pytest.importorskip("runpod")
    needed = _first_party_imports()
    assert {"pod_worker", "pose_factory"} <= needed, needed
    # the render child runs `python -m blender_scripts.render_batch` with cwd = the repo root
    assert "blender_scripts.render_batch" in (ROOT / "pose_factory" / "worker_process.py").read_text()
    needed.add("blender_scripts")
    copied = set()  # whole directories (or the whole context) copied into the image
    for word, args in dockerfile_instructions():
        if word == "COPY" and not args.startswith("--from"):
            *src, _dest = args.split()
            copied |= {"*" if s in (".", "./") else s.rstrip("/") for s in src}
    workdir = [a for w, a in dockerfile_instructions() if w == "WORKDIR"]
    assert workdir, "a WORKDIR for the repository root"
    missing = sorted(needed - copied) if "*" not in copied else []
    assert not missing, f"imported by the worker but not copied into the image: {missing}"


def test_dockerignore_keeps_secrets_and_venvs_out_of_the_build_context():
    lines = {l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
             if l.strip() and not l.startswith("#")}
    assert ".env" in lines
    assert any(l.startswith(".venv") for l in lines)
    copied = {a.split()[0].rstrip("/") for w, a in dockerfile_instructions() if w == "COPY"}
    for src in copied:  # nothing the Dockerfile copies is excluded
        top = src.split("/")[0]
        assert f"{top}/" not in lines and top not in lines, src


# --- build_and_push.sh ------------------------------------------------------------------------------
def test_build_script_is_strict_and_builds_for_amd64():
    text = BUILD.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert BUILD.stat().st_mode & stat.S_IXUSR, "executable"
    assert re.search(r"docker build --platform linux/amd64\b", text)
    assert re.search(r"docker push \"\$REF\"", text)


def _fake_docker(tmp_path: Path, name: str = "docker") -> tuple[Path, Path]:
    """A `docker` (or `buildah`) on the PATH that records its calls, so a run proves whether it
    was called."""
    bindir, log = tmp_path / "bin", tmp_path / "docker_calls.log"
    bindir.mkdir(exist_ok=True)
    fake = bindir / name
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    fake.chmod(0o755)
    return bindir, log


def _run_build(tmp_path, engine="docker", **env):
    bindir, log = _fake_docker(tmp_path, engine)
    path = f"{bindir}{os.pathsep}{os.path.dirname(shutil.which('git') or '/usr/bin/git')}{os.pathsep}/usr/bin:/bin"
    proc = subprocess.run(["bash", str(BUILD)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": path, "HOME": str(tmp_path), **env})
    calls = log.read_text().splitlines() if log.exists() else []
    return proc, calls


def test_build_script_refuses_without_image_and_never_calls_docker(tmp_path):
    proc, calls = _run_build(tmp_path)
    assert proc.returncode != 0
    assert "POSE_FACTORY_IMAGE is not set" in proc.stderr
    assert "docker.io/<user>/pose-factory-worker" in proc.stderr  # says what to set
    assert calls == [], "docker was called without POSE_FACTORY_IMAGE"


@pytest.mark.parametrize("image, message", [("pose-factory-worker", "expected registry/user/name"),
                                            ("docker.io/u/pose-factory-worker:v1", "leave the tag out")])
def test_build_script_refuses_a_malformed_image(tmp_path, image, message):
    proc, calls = _run_build(tmp_path, POSE_FACTORY_IMAGE=image)
    assert proc.returncode != 0 and message in proc.stderr
    assert calls == []


def test_build_script_builds_and_pushes_image_and_tag(tmp_path):
    proc, calls = _run_build(tmp_path, POSE_FACTORY_IMAGE="docker.io/someone/pose-factory-worker",
                             TAG="t1")
    assert proc.returncode == 0, proc.stderr
    assert calls == ["build --platform linux/amd64 -t docker.io/someone/pose-factory-worker:t1 .",
                     "push docker.io/someone/pose-factory-worker:t1"]


def test_build_script_builds_with_buildah_and_the_base_image_argument(tmp_path):
    """Where no Docker daemon runs, the same script builds and pushes with buildah."""
    proc, calls = _run_build(tmp_path, engine="buildah", ENGINE="buildah", TAG="t2",
                             POSE_FACTORY_IMAGE="docker.io/someone/pose-factory-worker",
                             BASE_IMAGE="localhost/pose-factory-base:bookworm")
    assert proc.returncode == 0, proc.stderr
    assert calls == ["bud --platform linux/amd64 --build-arg BASE_IMAGE=localhost/pose-factory-base:bookworm "
                     "-t docker.io/someone/pose-factory-worker:t2 .",
                     "push docker.io/someone/pose-factory-worker:t2"]


# --- build_image_local.sh ---------------------------------------------------------------------------
def test_local_build_script_is_strict_and_builds_the_dockerfile_on_the_local_base():
    text = BUILD_LOCAL.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert BUILD_LOCAL.stat().st_mode & stat.S_IXUSR, "executable"
    assert subprocess.run(["bash", "-n", str(BUILD_LOCAL)]).returncode == 0
    assert "debootstrap --variant=minbase" in text
    joined = re.sub(r"\\\n\s*", " ", text)
    assert re.search(r"buildah bud --isolation chroot .*--build-arg \"BASE_IMAGE=\$BASE_IMAGE\" .*-f Dockerfile", joined)
    # the handler's requests in the container: the smoke job and a posture request
    assert re.search(r"^REQUESTS=\(pod_worker/test_input\.json pod_worker/test_posture_input\.json\)", text, re.M)


def test_local_build_scripts_posture_request_is_a_valid_front_and_side_pair():
    """The request the script sends (a file, passed as one argument to --test_input, which Linux caps
    at 128 KiB) takes the posture path and holds two images the contract accepts; that MediaPipe
    finds the mannequin in them and the answer has the 8 angles, the script checks in the image."""
    from pose_factory.extract import posture as P

    path = ROOT / "pod_worker" / "test_posture_input.json"
    assert len(path.read_bytes()) < 128 * 1024
    job_input = json.loads(path.read_text())["input"]
    assert P.is_posture_input(job_input) and "spec" not in job_input
    front, side, points = P.request_images(job_input)
    for b64, view in ((front, "front"), (side, "side")):
        img = P.decode_image(b64, view)
        assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= P.MIN_SIDE, (view, img.shape)
    assert front != side and points is False


def test_local_build_script_says_what_to_install_without_buildah(tmp_path):
    """Run for real with a PATH that has no buildah: it stops before doing anything and names the
    packages to install."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("dirname", "id"):
        (bindir / tool).symlink_to(shutil.which(tool))
    proc = subprocess.run(["/bin/bash", str(BUILD_LOCAL)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={"PATH": str(bindir), "HOME": str(tmp_path)})
    assert proc.returncode != 0
    assert "buildah is not installed" in proc.stderr
    assert "apt-get install -y buildah" in proc.stderr and "dnf install -y buildah" in proc.stderr


def test_hub_handler_entry_starts_the_worker_handler():
    """The Hub's .runpod/handler.py runs pod_worker.handler.handler (a bad input shows it answers)."""
    pytest.importorskip("runpod")
    proc = subprocess.run([sys.executable, str(ROOT / ".runpod" / "handler.py"), "--test_input",
                           json.dumps({"input": {"spec": {"subjects": []}}})],
                          cwd=ROOT / ".runpod", capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")})
    assert "input.spec.subjects: got 0 subjects" in proc.stdout + proc.stderr
