"""De-identification and split rules shared by the ETL, the API and training.

Identifiers are replaced by HMAC-SHA256 of ``"<namespace>:<value>"`` under a secret key, so
that the same patient gets the same key in the ETL (Spark) and in the prediction API
(Lambda), while nobody without the key can reverse or recompute it. The namespace keeps a
patient number and an encounter number with the same digits from colliding.
"""

from __future__ import annotations

import hashlib
import hmac

PATIENT_NAMESPACE = "patient"
ENCOUNTER_NAMESPACE = "encounter"

#: Demo key for local runs only. Deployed jobs read the key from AWS Secrets Manager.
DEMO_DEIDENTIFICATION_KEY = "readmission-platform-demo-key-not-for-production"

#: HMAC block size of SHA-256 in bytes (RFC 2104): keys are padded or hashed to this length.
HMAC_BLOCK_SIZE = 64

SPLIT_BUCKETS = 100
TRAIN_BUCKETS = 80
VALIDATION_BUCKETS = 10
SPLIT_PREFIX_HEX_CHARS = 8
SPLITS = ("train", "validation", "test")


def keyed_hash(key: str | bytes, namespace: str, value: str) -> str:
    """Return the hex HMAC-SHA256 of ``namespace:value`` under ``key``."""
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    message = f"{namespace}:{value}".encode()
    return hmac.new(key_bytes, message, hashlib.sha256).hexdigest()


def hmac_pads(key: str | bytes) -> tuple[bytes, bytes]:
    """Return the (inner, outer) padded keys of RFC 2104.

    The Spark job composes HMAC from built-in ``sha2`` calls with these pads, which keeps
    hashing inside the JVM instead of a Python UDF.
    """
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    if len(key_bytes) > HMAC_BLOCK_SIZE:
        key_bytes = hashlib.sha256(key_bytes).digest()
    key_bytes = key_bytes.ljust(HMAC_BLOCK_SIZE, b"\x00")
    inner = bytes(b ^ 0x36 for b in key_bytes)
    outer = bytes(b ^ 0x5C for b in key_bytes)
    return inner, outer


def split_bucket(patient_key: str) -> int:
    """Return the patient's bucket in ``[0, 100)`` from the first hex digits of its key."""
    return int(patient_key[:SPLIT_PREFIX_HEX_CHARS], 16) % SPLIT_BUCKETS


def split_for_patient_key(patient_key: str) -> str:
    """Return ``train``, ``validation`` or ``test`` (80/10/10) for a hashed patient key.

    The split depends on the key alone, so it is stable across re-runs and no patient can
    fall in two splits.
    """
    bucket = split_bucket(patient_key)
    if bucket < TRAIN_BUCKETS:
        return "train"
    if bucket < TRAIN_BUCKETS + VALIDATION_BUCKETS:
        return "validation"
    return "test"
