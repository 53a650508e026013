"""Issue 21.4: the command line, run from the pack's folder inside a ComfyUI tree, sees the data
ComfyUI sees and writes nothing inside the pack; 21.5: a bare batch id is found in any project.

The ComfyUI tree is built in tmp as ComfyUI lays it out (main.py, folder_paths.py, custom_nodes/
<pack>), with a copy of the pack (or a symlink to one, as the harness and many users do). Its
folder_paths is a stand-in for the directory names only (the output directory, set the way
--output-directory sets it); the pack is imported the way ComfyUI imports a custom node (its
__init__.py by file path, as a module named after its folder), so ComfyUI's side resolves its
data root through the same code the nodes use. Batches are written into that side's storage
without Blender (tests/s3_support.write_batch). The CLI then runs as a user runs it: a subprocess
``python -m pose_factory ...`` with the pack's folder as its working directory."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACK_PARTS = ("__init__.py", "pyproject.toml", "pose_factory", "nodes", "web", "config/local.example.yaml")
BID_A, BID_B, BID_C = "0123456789abcdef", "fedcba9876543210", "00112233445566ff"

FOLDER_PATHS = '''"""Stand-in for ComfyUI's folder_paths: the directory names only."""
import os
base_path = os.path.dirname(os.path.realpath(__file__))
output_directory = os.path.join(base_path, "output")
temp_directory = os.path.join(base_path, "temp")
input_directory = os.path.join(base_path, "input")


def set_output_directory(path):  # what main.py does with --output-directory
    global output_directory
    output_directory = path


def get_output_directory():
    return output_directory


def get_temp_directory():
    return temp_directory


def get_input_directory():
    return input_directory
'''

# ComfyUI's side: folder_paths first on sys.path (ComfyUI runs from its folder), --output-directory
# applied, the pack loaded as ComfyUI's load_custom_node does; then batches rendered into what the
# nodes' settings name, and a rename through the pack's own route function.
COMFY_SIDE = r'''
import importlib.util, json, os, sys
comfy, pack, output, s3_support, actions = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
sys.path.insert(0, comfy)
import folder_paths
if output:
    folder_paths.set_output_directory(output)
name = os.path.basename(pack)
spec = importlib.util.spec_from_file_location(name, os.path.join(pack, "__init__.py"))
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
common, routes = sys.modules[name + ".nodes._common"], sys.modules[name + ".nodes.routes"]
from pose_factory import pointer
if actions.get("load_only"):  # what loading the pack alone did, before any node ran
    print(json.dumps({"pointer": pointer.read(pack)}))
    sys.exit(0)
from pose_factory import settings as settings_mod
from pose_factory.storage import index
settings = common.get_settings()
storage = settings_mod.make_storage(settings)
spec = importlib.util.spec_from_file_location("s3_support", s3_support)
support = importlib.util.module_from_spec(spec)
spec.loader.exec_module(support)
for project, bid in actions.get("batches", []):
    m = support.write_batch(storage, project, bid, {("openpose", 0, 0): support.png_bytes(1)}, 1, 1)
    index.record(settings["storage"]["cache_root"], m)
for old, new in actions.get("renames", []):
    routes.rename_project(settings, storage, old, {"to": new})
print(json.dumps({"data_root": settings["data_root"], "pack_root": str(settings_mod.PACK_ROOT)}))
'''


def copy_pack(dest: Path) -> Path:
    for part in PACK_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)
    return dest


def comfyui_tree(tmp: Path, linked: bool) -> tuple[Path, Path]:
    """(ComfyUI folder, the pack's folder in custom_nodes/): a copy, or a symlink to a copy."""
    comfy = tmp / "ComfyUI"
    (comfy / "custom_nodes").mkdir(parents=True)
    (comfy / "main.py").write_text("# ComfyUI's entry point (stand-in)\n")
    (comfy / "folder_paths.py").write_text(FOLDER_PATHS)
    pack = comfy / "custom_nodes" / "ComfyUI-3D-Pose-Factory"
    if linked:
        pack.symlink_to(copy_pack(tmp / "checkout" / "pose-factory"), target_is_directory=True)
    else:
        copy_pack(pack)
    return comfy, pack


def clean_env(**extra) -> dict:
    """The environment of a user's shell: no config or .env of ours, the test's pointer folder."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POSE_FACTORY_", "CLOUDFLARE_R2_", "RUNPOD_", "PYTHONPATH"))
           or k == "POSE_FACTORY_POINTER_DIR"}
    env["POSE_FACTORY_ENV_FILE"] = os.devnull
    env.update(extra)
    return env


def comfy_side(comfy: Path, pack: Path, output: Path | None, **actions) -> dict:
    proc = subprocess.run([sys.executable, "-c", COMFY_SIDE, str(comfy), str(pack), str(output or ""),
                           str(ROOT / "tests" / "s3_support.py"), json.dumps(actions)],
                          cwd=comfy, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cli(pack: Path, *args) -> tuple[int, str, str]:
    """python -m pose_factory ARGS from the pack's folder, as a shell there runs it (PWD is the
    path the user cd'ed to: for a symlinked pack, the link)."""
    proc = subprocess.run([sys.executable, "-m", "pose_factory", *args], cwd=pack, env=clean_env(PWD=str(pack)),
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def files_under(folder: Path) -> dict:
    """Every file and folder under the pack (Python's own __pycache__ aside), with sizes."""
    out = {}
    for here, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in dirs + files:
            p = Path(here, name)
            out[str(p.relative_to(folder))] = p.stat().st_size if p.is_file() else "dir"
    return out


@pytest.mark.parametrize("linked", [False, True], ids=["copied", "symlinked"])
def test_cli_in_a_comfyui_tree_lists_what_comfyui_rendered_and_writes_nothing_in_the_pack(tmp_path, linked):
    comfy, pack = comfyui_tree(tmp_path, linked)
    output = tmp_path / "elsewhere" / "comfy-output"  # ComfyUI started with --output-directory
    side = comfy_side(comfy, pack, output, batches=[["walks", BID_A], ["walks", BID_B], ["dance", BID_C]],
                      renames=[["dance", "ballet"]])
    root = output / "pose_factory"
    assert side["data_root"] == str(root) and (root / "storage" / "projects" / "walks").is_dir()
    before = files_under(pack)
    assert "data" not in before

    code, out, err = cli(pack, "list")
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith(f"data root: {root} (from the pointer ComfyUI wrote at "), out
    code, out, err = cli(pack, "list", "--json")
    got = json.loads(out)
    assert code == 0 and got["data_root"] == str(root)
    names = {p["name"]: p for p in got["projects"]}
    assert set(names) == {"walks", "ballet"}  # after the rename: the new name, the old one gone
    assert names["ballet"]["display_name"] == "ballet" and names["walks"]["batches"] == 2
    code, out, err = cli(pack, "list", "walks", "--json")
    assert code == 0 and {r["batch_id"] for r in json.loads(out)["batches"]} == {BID_A, BID_B}

    code, out, err = cli(pack, "doctor", "--no-worker")
    assert f"[ok] data root: {root} (from the pointer ComfyUI wrote at " in out, out + err
    assert "FAIL] data root" not in out and f"folder {root / 'storage'} reachable and writable" in out
    assert "note: ComfyUI read" not in out  # neither read a config file

    # a bare batch id, in a project that is not the config's (21.5): found; what it writes goes
    # under the data root
    code, out, err = cli(pack, "prepare-batch", BID_C, "--json")
    assert code == 0, out + err
    assert json.loads(out)["project"] == "ballet"
    assert (root / "working" / "current_batch" / "batch.json").is_file()
    assert files_under(pack) == before  # nothing written inside the pack


def test_cli_in_a_comfyui_tree_before_comfyui_ran_uses_its_output_folder_not_the_pack(tmp_path):
    """No pointer yet (ComfyUI never loaded the pack): the ComfyUI tree's default output folder,
    said so; before the fix the CLI made data/ inside the pack (index, ledger), which ComfyUI
    later moved with a warning about a file that differs."""
    comfy, pack = comfyui_tree(tmp_path, linked=False)
    before = files_under(pack)
    code, out, err = cli(pack, "list")
    assert code == 3 and out.startswith(f"data root: {comfy / 'output' / 'pose_factory'} (from the ComfyUI tree "
                                        f"around the pack ({comfy})"), out + err
    code, out, err = cli(pack, "doctor", "--no-worker")
    assert f"data root: {comfy / 'output' / 'pose_factory'}" in out
    code, out, err = cli(pack, "budget")
    assert code == 0, err
    assert (comfy / "output" / "pose_factory" / "budget" / "ledger.sqlite").is_file()
    assert files_under(pack) == before


def test_doctor_says_when_this_command_and_comfyui_use_different_roots(tmp_path):
    comfy, pack = comfyui_tree(tmp_path, linked=False)
    comfy_side(comfy, pack, None)
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"data_root: {tmp_path / 'mine'}\n")
    code, out, err = cli(pack, "--config", str(cfg), "doctor", "--no-worker")
    out += err  # a failing doctor prints on stderr
    assert code == 1
    assert f"[FAIL] data root: {tmp_path / 'mine'} (from data_root in the config file {cfg})" in out
    assert f"but ComfyUI uses {comfy / 'output' / 'pose_factory'} for this pack" in out
    other = tmp_path / "runpod.yaml"  # the same root, other settings: said, not failed
    other.write_text("client: runpod\n")
    code, out, err = cli(pack, "--config", str(other), "doctor", "--no-worker")
    assert f"note: ComfyUI read no config file, this command reads {other}" in out + err


def test_a_pointer_naming_a_folder_that_is_gone_is_not_followed(tmp_path):
    """A ComfyUI started once with a scratch --output-directory (since deleted): the CLI does not
    make that folder again, it says why it uses another root."""
    import shutil

    comfy, pack = comfyui_tree(tmp_path, linked=False)
    scratch = tmp_path / "scratch" / "out"
    comfy_side(comfy, pack, scratch)
    shutil.rmtree(tmp_path / "scratch")
    code, out, err = cli(pack, "list")
    first = out.splitlines()[0]
    assert first.startswith(f"data root: {comfy / 'output' / 'pose_factory'} (from the ComfyUI tree around"), out + err
    assert f"names {scratch / 'pose_factory'}, which no longer exists" in first
    assert not (tmp_path / "scratch").exists()
    # ComfyUI started with an output directory but nothing rendered yet: its root is followed
    fresh = tmp_path / "fresh-out"
    comfy_side(comfy, pack, fresh, load_only=True)
    fresh.mkdir(exist_ok=True)  # ComfyUI makes its output directory when it starts
    code, out, err = cli(pack, "list")
    assert out.startswith(f"data root: {fresh / 'pose_factory'} (from the pointer ComfyUI wrote"), out + err


def test_a_checkout_outside_comfyui_keeps_its_data_folder_and_says_why(tmp_path):
    pack = copy_pack(tmp_path / "checkout")
    code, out, err = cli(pack, "list")
    assert out.startswith(f"data root: {pack / 'data'} (from the pack's data/ (a checkout outside ComfyUI"), out + err


def test_the_pointer_lives_outside_the_pack_one_per_comfyui_install(tmp_path):
    """The pointer is config outside the pack (a re-cloned pack finds it again: the key is the
    pack's path), and two ComfyUI installs each have their own."""
    from pose_factory import pointer

    comfy, pack = comfyui_tree(tmp_path, linked=False)
    loaded = comfy_side(comfy, pack, None, load_only=True)  # ComfyUI loading the pack writes it
    assert loaded["pointer"]["data_root"] == str(comfy / "output" / "pose_factory"), loaded
    side = comfy_side(comfy, pack, None)
    path = pointer.pointer_path(pack)
    assert path.is_file() and not path.resolve().is_relative_to(pack.resolve())
    record = json.loads(path.read_text())
    assert record["data_root"] == side["data_root"] == str(comfy / "output" / "pose_factory")
    assert record["pack"] == str(pack.resolve()) and record["comfyui"] == str(comfy)
    # another ComfyUI install with its own copy of the pack: its own pointer
    other, other_pack = comfyui_tree(tmp_path / "second", linked=False)
    comfy_side(other, other_pack, tmp_path / "second-out")
    assert pointer.read(other_pack)["data_root"] == str(tmp_path / "second-out" / "pose_factory")
    assert pointer.read(pack)["data_root"] == record["data_root"]
