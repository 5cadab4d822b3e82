"""Put the drift baseline of the model being deployed where the drift monitor reads it.

Training saves ``drift_baseline.json`` inside ``model.tar.gz``. At deploy time the deployer
streams the archive (never holding it in memory), keeps the baseline under a per-version key,
and, once the endpoint update has been accepted, copies it to the endpoint's active key
``contracts.drift.baseline_s3_key(endpoint)``.
"""

from __future__ import annotations

import json
import tarfile
from typing import Any

from botocore.exceptions import ClientError

from contracts.drift import BaselineError, DriftAccumulator, baseline_s3_key
from contracts.model_artifact import DRIFT_BASELINE_FILE, root_member

#: A baseline is a few kilobytes; anything far larger is not one.
MAX_BASELINE_BYTES = 20 * 1024 * 1024
VERSION_METADATA_KEY = "model-package-version"
_ABSENT_CODES = ("404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden")


class BaselineArtifactError(RuntimeError):
    """The model artifact holds no usable drift baseline."""


def versioned_baseline_key(endpoint_name: str, version: int) -> str:
    """Where the baseline of one model package version is kept."""
    return f"baselines/{endpoint_name}/versions/{version}/{DRIFT_BASELINE_FILE}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith("s3://"):
        raise ValueError("not an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ValueError("an s3:// URI needs a bucket and a key")
    return bucket, key


def baseline_from_model_archive(s3: Any, model_data_url: str) -> bytes:
    """Stream ``model.tar.gz`` and return its top-level ``drift_baseline.json``, validated."""
    bucket, key = split_s3_uri(model_data_url)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                if root_member(member.name) != DRIFT_BASELINE_FILE:
                    continue
                if not member.isfile() or member.size > MAX_BASELINE_BYTES:
                    raise BaselineArtifactError(f"{DRIFT_BASELINE_FILE} in the model is not usable")
                extracted = archive.extractfile(member)
                if extracted is None:
                    raise BaselineArtifactError(f"{DRIFT_BASELINE_FILE} in the model is not usable")
                content = extracted.read()
                _validate(content)
                return content
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BaselineArtifactError("the model artifact is not a readable tar.gz") from error
    finally:
        body.close()
    raise BaselineArtifactError(f"the model artifact holds no {DRIFT_BASELINE_FILE}")


def _validate(content: bytes) -> None:
    try:
        DriftAccumulator(json.loads(content))
    except (ValueError, BaselineError, AttributeError) as error:
        raise BaselineArtifactError(f"{DRIFT_BASELINE_FILE} in the model is malformed") from error


def _absent_or_unlisted(error: ClientError) -> bool:
    """HeadObject of a missing key: 404, or 403 where the role may not list the prefix. Either
    way the write that follows is the real test of access."""
    return error.response.get("Error", {}).get("Code") in _ABSENT_CODES


def stage_baseline(
    s3: Any, bucket: str, endpoint_name: str, version: int, model_data_url: str, kms_key: str
) -> str:
    """Keep the version's baseline under its own key (once); return that key."""
    key = versioned_baseline_key(endpoint_name, version)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return key
    except ClientError as error:
        if not _absent_or_unlisted(error):
            raise
    content = baseline_from_model_archive(s3, model_data_url)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=content,
        ContentType="application/json",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
        Metadata={VERSION_METADATA_KEY: str(version)},
    )
    return key


def activate_baseline(s3: Any, bucket: str, endpoint_name: str, version: int, kms_key: str) -> bool:
    """Make the version's baseline the endpoint's active one; ``False`` if it already was."""
    active_key = baseline_s3_key(endpoint_name)
    try:
        head = s3.head_object(Bucket=bucket, Key=active_key)
        if head.get("Metadata", {}).get(VERSION_METADATA_KEY) == str(version):
            return False
    except ClientError as error:
        if not _absent_or_unlisted(error):
            raise
    s3.copy_object(
        Bucket=bucket,
        Key=active_key,
        CopySource={"Bucket": bucket, "Key": versioned_baseline_key(endpoint_name, version)},
        MetadataDirective="REPLACE",
        Metadata={VERSION_METADATA_KEY: str(version)},
        ContentType="application/json",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
    )
    return True
