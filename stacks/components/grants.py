"""Least-privilege grants on resources that may live in another stack.

CDK's ``bucket.grant_read`` grants ``s3:GetObject*``/``s3:List*`` on the whole bucket; these
helpers grant the exact actions on the given prefixes only. An ARN owned by another stack is
taken through ``Stack.export_value`` (the same export an automatic cross-stack reference
creates), so that the policy already holds its final ``Fn::ImportValue`` when
:func:`stacks.wildcards.acknowledge_wildcards` compares findings with its patterns.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

S3_READ = ("s3:GetObject",)
S3_WRITE = ("s3:PutObject", "s3:AbortMultipartUpload")
KMS_DECRYPT = ("kms:Decrypt",)
KMS_ENCRYPT_DECRYPT = ("kms:Decrypt", "kms:GenerateDataKey")


def reference(scope: IConstruct, value: str, owner: IConstruct) -> str:
    """``value`` (an attribute of ``owner``) as ``scope``'s stack will see it."""
    producer = Stack.of(owner)
    if producer.node.path == Stack.of(scope).node.path:
        return value
    return producer.export_value(value)


def grant_objects(
    role: iam.IRole,
    bucket: s3.IBucket,
    prefixes: Sequence[str],
    *,
    write: bool = False,
    read: bool = True,
    sid: str | None = None,
) -> None:
    """Read (and/or write) objects under ``prefixes`` of ``bucket``, and list those prefixes.

    The bucket's KMS key is not included: grant it with :func:`grant_key`.
    """
    if not prefixes:
        raise ValueError("at least one prefix is needed")
    arn = reference(role, bucket.bucket_arn, bucket)
    actions = (*(S3_READ if read else ()), *(S3_WRITE if write else ()))
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid=f"{sid}Objects" if sid else None,
            actions=list(actions),
            resources=[f"{arn}/{prefix.rstrip('/')}/*" for prefix in prefixes],
        )
    )
    if read:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=f"{sid}List" if sid else None,
                actions=["s3:ListBucket"],
                resources=[arn],
                conditions={"StringLike": {"s3:prefix": [f"{p.rstrip('/')}/*" for p in prefixes]}},
            )
        )


def grant_key(role: iam.IRole, key: kms.IKey, *, encrypt: bool = False) -> None:
    """Use ``key`` to decrypt (and, with ``encrypt``, to create data keys)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(KMS_ENCRYPT_DECRYPT if encrypt else KMS_DECRYPT),
            resources=[reference(role, key.key_arn, key)],
        )
    )
