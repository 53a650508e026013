"""Issue 21, point 12: a render from the command line (the local worker, real Blender) leaves
nothing in the temp folder: not the standby render child the worker starts for a next job that
never comes, nor its scratch folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.blender
def test_a_cli_render_leaves_the_temp_folder_empty(tmp_path):
    temp = tmp_path / "temp"
    temp.mkdir()
    (tmp_path / "config.yaml").write_text(f"data_root: {json.dumps(str(tmp_path / 'data'))}\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"subjects": [{"type": "mannequin", "poses": ["waving"]}],
                                "cameras": {"type": "orbit", "views": 1}, "render": {"width": 64, "height": 64}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "CLOUDFLARE_R2_", "POSE_FACTORY_"))}
    env.update(TMPDIR=str(temp), PYTHONPATH=str(ROOT), POSE_FACTORY_CONFIG=str(tmp_path / "config.yaml"),
               POSE_FACTORY_ENV_FILE=str(tmp_path / "no.env"))
    for i in range(2):  # a fresh worker each time; the second also clears what the first left (so 2 tries)
        proc = subprocess.run([sys.executable, "-m", "pose_factory", "render", str(spec), "--out",
                               str(tmp_path / f"out{i}"), "--project", "p", "--no-sheet"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "rendered: p/" in proc.stdout
        assert sorted(p.name for p in temp.iterdir()) == [], f"left in the temp folder after render {i}"
