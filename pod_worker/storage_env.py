"""The worker's storage, chosen from the environment (DESIGN.md §4 "Credentials").

R2 when POSE_FACTORY_R2_BUCKET is set: S3Storage.from_env reads the CLOUDFLARE_R2_* credentials
and the endpoint (CLOUDFLARE_R2_ACCOUNT_ID or POSE_FACTORY_S3_ENDPOINT_URL) and names any that is
missing, so a half-set R2 never falls back silently to a folder nobody reads. Otherwise a local
folder: POSE_FACTORY_STORAGE_ROOT, else the RunPod network volume if mounted, else ./data/storage.
"""
from __future__ import annotations

import os

from pose_factory.storage import LocalStorage

VOLUME = "/runpod-volume"
VOLUME_ROOT = VOLUME + "/pose_factory"


def local_root(env=None) -> str:
    env = os.environ if env is None else env
    if env.get("POSE_FACTORY_STORAGE_ROOT"):
        return env["POSE_FACTORY_STORAGE_ROOT"]
    if os.path.isdir(VOLUME):  # a network volume is mounted
        return VOLUME_ROOT
    return os.path.join(".", "data", "storage")


def storage_from_env(env=None):
    env = os.environ if env is None else env
    if env.get("POSE_FACTORY_R2_BUCKET"):
        from pose_factory.storage.s3 import S3Storage  # lazy: boto3 only when R2 is used

        return S3Storage.from_env(env)
    return LocalStorage(local_root(env))
