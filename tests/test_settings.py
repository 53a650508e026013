"""Settings: config/local.yaml keys validated with the key named; secrets only from the
environment or .env (pose_factory/settings.py)."""
import pytest
import yaml

from pose_factory import settings as S


@pytest.fixture(autouse=True)
def no_config_from_the_environment(monkeypatch, tmp_path):
    """These tests are about the config and the default data root themselves: no test config, and
    no pointer another test's stand-in ComfyUI recorded for this checkout."""
    monkeypatch.delenv("POSE_FACTORY_CONFIG", raising=False)
    monkeypatch.setenv("POSE_FACTORY_POINTER_DIR", str(tmp_path / "pointers"))


def test_the_example_config_lists_every_key_with_its_default():
    given = yaml.safe_load((S.PACK_ROOT / "config" / "local.example.yaml").read_text())
    assert S._merge(S.DEFAULTS, given, "") == S.DEFAULTS
    assert set(given) == set(S.DEFAULTS)
    for section, value in S.DEFAULTS.items():
        if isinstance(value, dict):
            assert set(given[section]) == set(value), section


def test_config_file_values_paths_and_errors(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("project: my-proj\nrunpod: {max_shard_views: 4}\nstorage: {local_root: /abs/store}\n")
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(cfg))
    s = S.load_settings()
    assert s["project"] == "my-proj" and s["runpod"]["max_shard_views"] == 4
    assert s["storage"]["local_root"] == "/abs/store"
    assert s["storage"]["cache_root"] == str(S.PACK_ROOT / "data" / "raw")  # outside ComfyUI: the pack's data/
    assert s["runpod"]["gpu_class"] == "24gb"  # a key left out takes its default
    for text, message in [("runpod: {gpu_class: rtx}", "runpod.gpu_class: got 'rtx', allowed: 16gb"),
                          ("storage: {bucket: b}", "storage.bucket: unknown key"),
                          ("client: cloud", "client: got 'cloud', allowed: local, runpod"),
                          ("project: 'a/b'", "config project"),
                          ("budget: {monthly_gpu_limit_usd: -1}", "budget.monthly_gpu_limit_usd: got -1"),
                          ("runpod: [1]", "runpod: expected a mapping"),
                          ("runpod: {poll_interval_s: true}", "runpod.poll_interval_s: got True")]:
        cfg.write_text(text)
        with pytest.raises(S.SettingsError, match=message.replace("(", r"\(").replace("[", r"\[")):
            S.load_settings()
    monkeypatch.setenv("POSE_FACTORY_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(S.SettingsError, match="not found"):
        S.load_settings()


def test_env_file_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("# R2\nexport CLOUDFLARE_R2_ACCOUNT_ID=abc123\nRUNPOD_API_KEY='k y'  \n"
                   "RUNPOD_ENDPOINT_ID=ep # comment\nPOSE_FACTORY_R2_BUCKET=\"bucket\"\n\n")
    monkeypatch.setenv("POSE_FACTORY_ENV_FILE", str(env))
    monkeypatch.setenv("RUNPOD_ENDPOINT_ID", "from-env")
    got = S.load_env()
    assert got["CLOUDFLARE_R2_ACCOUNT_ID"] == "abc123" and got["RUNPOD_API_KEY"] == "k y"
    assert got["POSE_FACTORY_R2_BUCKET"] == "bucket" and got["RUNPOD_ENDPOINT_ID"] == "from-env"
    env.write_text("RUNPOD_API_KEY sk-secret-value\n")
    with pytest.raises(S.SettingsError, match="line 1: expected KEY=value") as e:
        S.load_env()
    assert "sk-secret" not in str(e.value)


def test_storage_from_settings(tmp_path):
    s = S.load_settings(overrides={"storage": {"local_root": str(tmp_path / "st")}})
    store = S.make_storage(s, {})
    store.put_bytes("projects/p/x.txt", b"1")
    assert (tmp_path / "st" / "projects" / "p" / "x.txt").read_bytes() == b"1"
    assert S.storage_env(s, {"RUNPOD_API_KEY": "k"}) == {"POSE_FACTORY_STORAGE_ROOT": str(tmp_path / "st")}
    r2 = S.load_settings(overrides={"storage": {"backend": "r2"}})
    env = {"CLOUDFLARE_R2_ACCESS_KEY_ID": "a", "POSE_FACTORY_R2_BUCKET": "b", "RUNPOD_API_KEY": "k"}
    assert S.storage_env(r2, env) == {"CLOUDFLARE_R2_ACCESS_KEY_ID": "a", "POSE_FACTORY_R2_BUCKET": "b"}
    with pytest.raises(Exception, match="CLOUDFLARE_R2_SECRET_ACCESS_KEY"):
        S.make_storage(r2, env)


# --- the data root (issue 9.1): outside the pack inside ComfyUI, moved there once -----------------------
def comfyui(monkeypatch, output):
    """ComfyUI's folder_paths as ComfyUI has it loaded when it imports the pack (its output folder)."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace(get_output_directory=lambda: str(output)))


def test_data_root_outside_comfyui_inside_comfyui_and_configured(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "DEFAULT_CONFIG", tmp_path / "no-config.yaml")
    monkeypatch.delenv("POSE_FACTORY_CONFIG", raising=False)
    s = S.load_settings()  # CLI and tests: the pack's data/
    assert S.data_root(s) == S.PACK_ROOT / "data"
    assert s["storage"]["local_root"] == str(S.PACK_ROOT / "data" / "storage")
    comfyui(monkeypatch, tmp_path / "ComfyUI" / "output")
    s = S.load_settings()
    root = tmp_path / "ComfyUI" / "output" / "pose_factory"
    assert S.data_root(s) == root and s["data_root"] == str(root)
    assert (s["storage"]["local_root"], s["storage"]["cache_root"], s["budget"]["ledger_path"]) == (
        str(root / "storage"), str(root / "raw"), str(root / "budget" / "ledger.sqlite"))
    assert not S.data_root(s).is_relative_to(S.PACK_ROOT)
    # a configured path wins, each on its own
    s = S.load_settings(overrides={"data_root": str(tmp_path / "mine"), "storage": {"cache_root": "/abs/cache"}})
    assert s["storage"]["local_root"] == str(tmp_path / "mine" / "storage")
    assert s["storage"]["cache_root"] == "/abs/cache"
    assert S.load_settings(overrides={"data_root": "elsewhere"})["data_root"] == str(S.PACK_ROOT / "elsewhere")
    with pytest.raises(S.SettingsError, match="data_root: got 3, allowed: a folder path"):
        S.load_settings(overrides={"data_root": 3})


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_in_pack_data_moves_to_the_data_root_once_never_overwriting(tmp_path, monkeypatch):
    pack_data, root = tmp_path / "pack" / "data", tmp_path / "output" / "pose_factory"
    files = {"storage/projects/demo/batches/0123456789abcdef/manifest.json": b"{}",
             "storage/projects/demo/batches/0123456789abcdef/openpose/v00_f0000.png": b"png" * 100,
             "raw/index.json": b'{"version": 1}', "budget/ledger.sqlite": b"sqlite",
             "budget/ledger.sqlite-wal": b"wal", "logs/local_worker.log": b"log"}
    for rel, data in files.items():
        (pack_data / rel).parent.mkdir(parents=True, exist_ok=True)
        (pack_data / rel).write_bytes(data)
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "index.json").write_bytes(b"a newer index")  # never overwritten
    (root / "budget").mkdir()
    (root / "budget" / "ledger.sqlite").write_bytes(b"sqlite")  # the same bytes: the in-pack copy goes
    comfyui(monkeypatch, tmp_path / "output")
    settings = S.load_settings()
    assert S.data_root(settings) == root

    # interrupted after two files: nothing is lost, a second run finishes the move
    real, calls = S._move_file, {"n": 0}

    def dies_after_two(a, b):
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        real(a, b)

    monkeypatch.setattr(S, "_move_file", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        S.migrate_pack_data(settings, pack_data)
    monkeypatch.setattr(S, "_move_file", real)
    merged = {**_tree(pack_data), **_tree(root)}
    assert set(merged) == set(files)  # every file still somewhere
    kept = S.migrate_pack_data(settings, pack_data)
    assert kept == [pack_data / "raw" / "index.json"]
    assert _tree(pack_data) == {"raw/index.json": b'{"version": 1}'}
    assert _tree(root) == dict(files, **{"raw/index.json": b"a newer index"})
    (root / "raw" / "index.json").unlink()  # the user resolves the conflict: the next start moves it
    assert S.migrate_pack_data(settings, pack_data) == [] and not pack_data.exists()
    assert _tree(root) == files


def test_migration_leaves_configured_in_pack_paths_and_configured_roots_alone(tmp_path, monkeypatch):
    pack_data, root = tmp_path / "pack" / "data", tmp_path / "output" / "pose_factory"
    for rel in ("storage/a.txt", "raw/b.txt"):
        (pack_data / rel).parent.mkdir(parents=True, exist_ok=True)
        (pack_data / rel).write_text(rel)
    before = _tree(pack_data)
    # outside ComfyUI, or with a configured data_root (a harness's temporary folder): nothing moves
    assert S.migrate_pack_data(S.load_settings(overrides={"data_root": str(root)}), pack_data) == []
    comfyui(monkeypatch, tmp_path / "output")
    assert S.migrate_pack_data(S.load_settings(overrides={"data_root": str(tmp_path / "tmp")}), pack_data) == []
    assert _tree(pack_data) == before and not root.exists() and not (tmp_path / "tmp").exists()
    # inside ComfyUI by default: all but what a configured path still uses
    settings = S.load_settings(overrides={"storage": {"local_root": str(pack_data / "storage")}})
    assert S.migrate_pack_data(settings, pack_data) == []
    assert _tree(pack_data) == {"storage/a.txt": b"storage/a.txt"} and _tree(root) == {"raw/b.txt": b"raw/b.txt"}


@pytest.mark.parametrize("url, why", [
    ("http://", "no host"), ("https://", "no host"), ("http:///v2", "no host"),
    ("api.runpod.ai/v2", "does not start with http:// or https://"),
    ("https:api.runpod.ai", "does not start with http:// or https://"),
    ("ftp://api.runpod.ai/v2", "unsupported scheme 'ftp'"), ("file:///etc/passwd", "unsupported scheme 'file'"),
    ("https://api.runpod .ai/v2", "contains spaces"), ("https://api.runpod.ai/v2\n", "contains spaces"),
    (" ", "empty"), ("", "empty"), ("https://api.runpod.ai:99999/v2", "port is not a number"),
    ("https://me:secret@api.runpod.ai/v2", "user name or password"), ("https://api.runpod.ai/v2?a=1", "?query"),
    (7, "not a text")])
def test_runpod_url_base_without_a_host_or_malformed_is_refused_naming_the_key(url, why):
    """Issue 21.12: "http://" was accepted (only the scheme was matched)."""
    with pytest.raises(S.SettingsError) as e:
        S.load_settings(overrides={"runpod": {"url_base": url}})
    text = str(e.value)
    assert text.startswith("config runpod.url_base: got ") and why in text
    assert "allowed: an http:// or https:// URL with a host name" in text
    assert "secret" not in text  # a password is never echoed


@pytest.mark.parametrize("url", ["https://api.runpod.ai/v2", "http://127.0.0.1:8080/v2", "http://[::1]:9/v2",
                                 "HTTPS://API.RUNPOD.AI/v2/"])
def test_runpod_url_base_well_formed_is_kept(url):
    assert S.load_settings(overrides={"runpod": {"url_base": url}})["runpod"]["url_base"] == url
