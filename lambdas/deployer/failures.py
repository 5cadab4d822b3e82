"""The deployer's memory of deployments that failed, kept beside the drift baselines in S3.

A deployment that failed (its update rolled back, its endpoint ended ``Failed``, its artifact could
not be read) is not tried again for the same approval: otherwise every later look at the endpoint
would start the same doomed update. A new approval of the version (a new approval stamp) may try
again. The marker is an empty object whose key names the config and the approval stamp; it lives in
S3 rather than on the endpoint or config because either may not exist (a failed first creation
deletes the endpoint; a missing artifact stops before the config is made).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

_ABSENT_CODES = ("404", "NoSuchKey", "NotFound")


def failure_key(endpoint_name: str, config_name: str, approval_stamp: str) -> str:
    """Where the marker of one failed deployment lives."""
    return f"baselines/{endpoint_name}/failed-deployments/{config_name}@{approval_stamp}"


def has_failed(
    s3: Any, bucket: str, endpoint_name: str, config_name: str, approval_stamp: str
) -> bool:
    """Whether ``config_name`` already failed to deploy for this approval."""
    try:
        s3.head_object(Bucket=bucket, Key=failure_key(endpoint_name, config_name, approval_stamp))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _ABSENT_CODES:
            return False
        raise
    return True


def record_failure(
    s3: Any,
    bucket: str,
    endpoint_name: str,
    config_name: str,
    approval_stamp: str,
    kms_key: str,
) -> None:
    """Remember that ``config_name`` failed to deploy for this approval."""
    s3.put_object(
        Bucket=bucket,
        Key=failure_key(endpoint_name, config_name, approval_stamp),
        Body=b"",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
    )
