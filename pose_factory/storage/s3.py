"""S3 / Cloudflare R2 storage backend (DESIGN.md §4): the methods of ``storage.Storage`` over boto3.

boto3 is imported when a backend is made, so the pack imports without it. Transient errors are
retried by botocore with backoff; large files go through boto3's transfer manager (parallel
multipart). The secret key is handed to boto3 and never kept, logged or shown in a repr; botocore's
DEBUG logs (which print the signed Authorization header, access key id included) pass through a
filter that blanks both keys. A connection that goes silent times out after READ_TIMEOUT_S and
is retried (resumed with a Range GET by the downloader), not left hanging for botocore's 60 s.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from ..errors import StorageError
from . import check_prefix, validate_key

_MB = 1 << 20
_COPY_OBJECT_MAX = 5 * (1 << 30)  # S3's limit for a single CopyObject request
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 10  # silence this long on an open connection is a stall: retry
_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")


class _Redact(logging.Filter):
    """Blanks the given secrets from every record it sees (message and arguments formatted first)."""

    def __init__(self):
        super().__init__()
        self.secrets: set = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            try:
                text = record.getMessage()
            except Exception:  # a record that cannot be formatted is shown as it is
                return True
            if any(s in text for s in self.secrets):
                for s in self.secrets:
                    text = text.replace(s, "<redacted>")
                record.msg, record.args = text, None
        return True


_redact = _Redact()


def _redact_in_logs(*secrets: str) -> None:
    """Adds secrets to the filter on every logger of boto3 and its libraries (a filter on a logger
    sees only that logger's own records, so each one gets it; they all exist once a client is made)."""
    _redact.secrets.update(s for s in secrets if s and len(s) >= 4)
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in _LOGGERS:
            logger = logging.getLogger(name)
            if _redact not in logger.filters:
                logger.addFilter(_redact)


def endpoint_for_account(account_id: str) -> str:
    """R2's S3 endpoint of a Cloudflare account."""
    if not isinstance(account_id, str) or not account_id.isalnum():
        raise StorageError(f"Cloudflare account id {account_id!r}: expected letters and digits only")
    return f"https://{account_id}.r2.cloudflarestorage.com"


class S3Storage:
    """A bucket as storage. Keys are the same relative POSIX keys as LocalStorage's."""

    def __init__(self, bucket: str, endpoint_url: str, access_key: str, secret_key: str, region: str = "auto",
                 max_workers: int = 16, retry_mode: str = "standard", max_attempts: int = 5,
                 multipart_threshold: int = 16 * _MB, read_timeout: float = READ_TIMEOUT_S):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if not bucket or not isinstance(bucket, str):
            raise StorageError(f"bucket name {bucket!r}: expected a non-empty string")
        self.bucket, self.endpoint_url, self.region = bucket, endpoint_url, region
        config = Config(
            region_name=region,
            retries={"mode": retry_mode, "max_attempts": max_attempts},
            max_pool_connections=max_workers + 4,  # each worker thread keeps its own connection
            s3={"addressing_style": "path"},  # works on R2, MinIO and loopback without DNS tricks
            # S3-compatible stores differ in the newer default checksums; send them only when required
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=CONNECT_TIMEOUT_S, read_timeout=read_timeout,
        )
        _redact_in_logs(access_key, secret_key)  # before the first request is logged
        self._client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            config=config)
        self._transfer = TransferConfig(multipart_threshold=multipart_threshold, multipart_chunksize=8 * _MB,
                                        max_concurrency=max_workers, use_threads=True)
        _redact_in_logs(access_key, secret_key)  # the loggers of modules the client imported

    @classmethod
    def from_env(cls, env=None, **kw) -> "S3Storage":
        """From DESIGN.md §4's variables: CLOUDFLARE_R2_ACCESS_KEY_ID, CLOUDFLARE_R2_SECRET_ACCESS_KEY,
        POSE_FACTORY_R2_BUCKET and CLOUDFLARE_R2_ACCOUNT_ID or POSE_FACTORY_S3_ENDPOINT_URL."""
        env = os.environ if env is None else env
        missing = [n for n in ("CLOUDFLARE_R2_ACCESS_KEY_ID", "CLOUDFLARE_R2_SECRET_ACCESS_KEY",
                               "POSE_FACTORY_R2_BUCKET") if not env.get(n)]
        endpoint = env.get("POSE_FACTORY_S3_ENDPOINT_URL")
        if not endpoint and env.get("CLOUDFLARE_R2_ACCOUNT_ID"):
            endpoint = endpoint_for_account(env["CLOUDFLARE_R2_ACCOUNT_ID"])
        if not endpoint:
            missing.append("CLOUDFLARE_R2_ACCOUNT_ID (or POSE_FACTORY_S3_ENDPOINT_URL)")
        if missing:
            raise StorageError("R2 storage needs these environment variables: " + ", ".join(missing))
        return cls(env["POSE_FACTORY_R2_BUCKET"], endpoint, env["CLOUDFLARE_R2_ACCESS_KEY_ID"],
                   env["CLOUDFLARE_R2_SECRET_ACCESS_KEY"], **kw)

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    def check(self) -> None:
        """StorageError naming the bucket when it does not exist or cannot be reached, so a job
        fails before its render rather than at its first upload."""
        try:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except Exception as e:  # a token scoped to objects may not HEAD the bucket: list one key
                if _code(e) not in ("403", "AccessDenied"):
                    raise
                self._client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except Exception as e:
            code = _code(e)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise StorageError(f"bucket {self.bucket!r} does not exist at {self.endpoint_url}: create it, or set "
                                   "POSE_FACTORY_R2_BUCKET to an existing bucket") from None
            if code in ("403", "AccessDenied"):
                raise StorageError(f"bucket {self.bucket!r} at {self.endpoint_url}: access denied; check the "
                                   "CLOUDFLARE_R2_ACCESS_KEY_ID / CLOUDFLARE_R2_SECRET_ACCESS_KEY token's "
                                   "permissions on it") from None
            raise StorageError(f"bucket {self.bucket!r} at {self.endpoint_url} cannot be reached: "
                               f"{code or type(e).__name__}: {e}") from None

    def lock_dir(self) -> Path:
        """batch_lock's folder for this bucket on this machine."""
        name = hashlib.sha256(f"{self.endpoint_url}\0{self.bucket}".encode("utf-8")).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / "pose-factory-locks" / name

    def _fail(self, key: str, e) -> StorageError:
        code = _code(e)
        if code in ("NoSuchKey", "404", "NotFound"):
            return StorageError(f"no such key {key!r} in bucket {self.bucket!r}")
        return StorageError(f"{key!r} in bucket {self.bucket!r}: {code or type(e).__name__}: {e}")

    # --- the Storage methods ----------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes) -> None:
        validate_key(key)
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data))
        except Exception as e:
            raise self._fail(key, e) from None

    def put_file(self, key: str, src_path) -> None:
        validate_key(key)
        try:
            self._client.upload_file(os.fspath(src_path), self.bucket, key, Config=self._transfer)
        except Exception as e:
            raise self._fail(key, e) from None

    def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        try:
            return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as e:
            raise self._fail(key, e) from None

    def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
            return True
        except Exception as e:
            if _code(e) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail(key, e) from None

    def list(self, prefix: str = "") -> list[str]:
        """Every key that starts with prefix (a plain string prefix), sorted."""
        return list(self.list_info(prefix))

    def list_info(self, prefix: str = "") -> dict:
        """{key: {"size": bytes, "etag": the object's ETag}} of every key under prefix, sorted by key."""
        check_prefix(prefix)
        found = {}
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for o in page.get("Contents", ()):
                    found[o["Key"]] = {"size": o["Size"], "etag": o.get("ETag")}
        except Exception as e:
            raise self._fail(prefix, e) from None
        return dict(sorted(found.items()))

    def copy(self, src_key: str, dst_key: str, size: int | None = None) -> None:
        """A server-side copy (no bytes through this machine): one CopyObject request when the
        caller knows the object is under CopyObject's 5 GB limit (``size``), else the transfer
        manager's (a HEAD, then a multipart copy when large)."""
        validate_key(src_key)
        validate_key(dst_key)
        source = {"Bucket": self.bucket, "Key": src_key}
        try:
            if size is not None and size < _COPY_OBJECT_MAX:
                self._client.copy_object(CopySource=source, Bucket=self.bucket, Key=dst_key)
            else:
                self._client.copy(source, self.bucket, dst_key, Config=self._transfer)
        except Exception as e:
            raise self._fail(src_key, e) from None

    def sha256(self, key: str) -> str:
        """The object's sha256, streamed (resumed once where the connection breaks)."""
        import hashlib

        h, got = hashlib.sha256(), 0
        for attempt in range(3):
            try:
                for chunk in self.iter_range(key, got):
                    h.update(chunk)
                    got += len(chunk)
                return h.hexdigest()
            except ConnectionError:
                if attempt == 2:
                    raise StorageError(f"{key!r} in bucket {self.bucket!r}: could not be read to the end") from None
        raise AssertionError("unreachable")

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)  # no error when absent, as locally
        except Exception as e:
            raise self._fail(key, e) from None

    def delete_many(self, keys) -> None:
        """Deletes keys in requests of up to 1000 (S3 DeleteObjects); absent keys are no error."""
        keys = [validate_key(k) for k in keys]
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            try:
                resp = self._client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in chunk], "Quiet": True})
            except Exception as e:
                raise self._fail(chunk[0], e) from None
            if resp.get("Errors"):
                err = resp["Errors"][0]
                raise StorageError(f"{err.get('Key')!r} in bucket {self.bucket!r}: not deleted "
                                   f"({err.get('Code')}: {err.get('Message')}; {len(resp['Errors'])} keys failed)")

    # --- transfers for the downloader -------------------------------------------------------------
    def iter_range(self, key: str, start: int = 0, chunk_size: int = 256 << 10):
        """Yields the object's bytes from offset ``start`` (an HTTP Range GET when start > 0).
        A connection that breaks mid-body raises ConnectionError, so a caller can resume."""
        validate_key(key)
        from botocore.exceptions import BotoCoreError, ClientError

        kw = {"Range": f"bytes={start}-"} if start else {}
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key, **kw)["Body"]
        except ClientError as e:
            raise self._fail(key, e) from None
        except (BotoCoreError, OSError) as e:  # unreachable even after botocore's retries
            raise ConnectionError(f"cannot fetch {key!r}: {e}") from e
        try:
            while chunk := body.read(chunk_size):
                yield chunk
        except (BotoCoreError, OSError, ValueError) as e:  # urllib3's ProtocolError is no OSError
            raise ConnectionError(f"transfer of {key!r} broke: {e}") from e
        except Exception as e:
            if type(e).__module__.startswith(("urllib3", "http")):
                raise ConnectionError(f"transfer of {key!r} broke: {e}") from e
            raise
        finally:
            body.close()

    def download_file(self, key: str, dest_path) -> None:
        """A large object to a local file through the transfer manager (parallel ranged GETs)."""
        validate_key(key)
        try:
            self._client.download_file(self.bucket, key, os.fspath(dest_path), Config=self._transfer)
        except Exception as e:
            raise self._fail(key, e) from None


def _code(e) -> str:
    resp = getattr(e, "response", None)
    return str(resp.get("Error", {}).get("Code", "")) if isinstance(resp, dict) else ""
