"""The command line renders through the job client (the local worker) into a folder."""
import json

import pytest

from pose_factory import cli
from pose_factory.storage import LocalStorage, list_batches


@pytest.mark.blender
def test_render_then_found_then_errors(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"subjects": [{"type": "mannequin", "poses": ["waving"]}],
                                "cameras": {"type": "orbit", "views": 2}, "render": {"width": 64, "height": 64}}))
    out = tmp_path / "out"
    assert cli.main(["render", str(spec), "--out", str(out), "--project", "cli"]) == 0
    (bid,) = list_batches(LocalStorage(out), "cli")
    said = capsys.readouterr().out
    assert f"rendered: cli/{bid} (local)" in said and (out / f"contact_sheet_{bid}.png").is_file()
    assert cli.main(["render", str(spec), "--out", str(out), "--project", "cli", "--no-sheet"]) == 0
    assert "already in storage" in capsys.readouterr().out

    spec.write_text(json.dumps({"subjects": [{"type": "mannequin", "poses": ["jump"]}]}))
    assert cli.main(["render", str(spec), "--out", str(out)]) == 2
    assert "subjects[0].poses[0].preset: unknown preset 'jump'" in capsys.readouterr().err
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.setenv("POSE_FACTORY_ENV_FILE", str(tmp_path / "no.env"))
    assert cli.main(["render", str(spec), "--backend", "runpod"]) == 2
    assert "needs RUNPOD_API_KEY" in capsys.readouterr().err
