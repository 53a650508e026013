"""Settings: config/local.yaml keys validated with the key named; secrets only from the
environment or .env (pose_factory/settings.py)."""
import pytest
import yaml

from pose_factory import settings as S


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
    assert s["storage"]["cache_root"] == str(S.PACK_ROOT / "data" / "raw")  # relative to the pack
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
