"""The data lake's protections, asserted on the synthesized template."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from stacks.config import load_stage_config
from stacks.data_lake_stack import DataLakeStack
from tests.stacks.cdk_helpers import cdk_context

DATA_BUCKETS = 4  # raw, curated, artifacts, capture


def _template(stage: str) -> Template:
    config = load_stage_config(cdk_context(), stage)
    app = App(context=cdk_context())  # the feature flags of cdk.json, as the CLI passes them
    stack = DataLakeStack(app, f"Test-{stage}", config=config)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def dev() -> Template:
    return _template("dev")


@pytest.fixture(scope="module")
def prod() -> Template:
    return _template("prod")


def _buckets(template: Template) -> Mapping[str, Any]:
    return template.find_resources("AWS::S3::Bucket")


def test_kms_key_rotates(dev: Template) -> None:
    dev.resource_count_is("AWS::KMS::Key", 1)
    dev.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_data_buckets_use_the_kms_key_and_the_log_bucket_sse_s3(dev: Template) -> None:
    buckets = _buckets(dev)
    assert len(buckets) == DATA_BUCKETS + 1
    algorithms = sorted(
        b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        for b in buckets.values()
    )
    assert algorithms == ["AES256"] + ["aws:kms"] * DATA_BUCKETS
    dev.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": Match.any_value(),
                        },
                    }
                ]
            }
        },
    )


def test_every_bucket_blocks_public_access_and_is_versioned(dev: Template) -> None:
    for bucket in _buckets(dev).values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_every_data_bucket_logs_to_the_access_log_bucket(dev: Template) -> None:
    buckets = _buckets(dev)
    log_bucket_ids = [
        bid for bid, b in buckets.items() if "LoggingConfiguration" not in b["Properties"]
    ]
    assert len(log_bucket_ids) == 1
    for bid, bucket in buckets.items():
        if bid == log_bucket_ids[0]:
            continue
        destination = bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"]
        assert destination == {"Ref": log_bucket_ids[0]}


def test_every_bucket_policy_denies_plain_http_and_old_tls(dev: Template) -> None:
    policies = dev.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == DATA_BUCKETS + 1
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denies = [s for s in statements if s["Effect"] == "Deny"]
        conditions = [s.get("Condition", {}) for s in denies]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_lifecycle_follows_the_stage_retention(dev: Template, prod: Template) -> None:
    def expirations(template: Template) -> set[int]:
        days = set()
        for bucket in _buckets(template).values():
            for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]:
                if "ExpirationInDays" in rule:
                    days.add(rule["ExpirationInDays"])
        return days

    assert expirations(dev) == {365, 90}  # raw and access logs 365, capture 90
    assert expirations(prod) == {2555, 365}


def test_prod_retains_data_and_dev_does_not(dev: Template, prod: Template) -> None:
    assert {b["DeletionPolicy"] for b in _buckets(prod).values()} == {"Retain"}
    assert {b["DeletionPolicy"] for b in _buckets(dev).values()} == {"Delete"}
    # The key outlives the stack in every stage: destroying it would make backups unreadable.
    dev.has_resource("AWS::KMS::Key", {"DeletionPolicy": "Retain"})


def test_glue_catalog_database_points_at_the_curated_features(dev: Template) -> None:
    dev.has_resource_properties(
        "AWS::Glue::Database",
        {"DatabaseInput": {"Name": "readmission_dev", "LocationUri": Match.any_value()}},
    )
