"""The audit trail: CloudTrail with data events on the PHI buckets, into an Object Lock bucket.

Asserted against what AWS documents rather than what moto accepts:
- https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
  (GetBucketAcl and PutObject to AWSLogs/<account>/*, each with aws:SourceArn = the trail)
- https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
  (GenerateDataKey* with aws:SourceArn and the aws:cloudtrail:arn encryption context)
- https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-data-events-with-cloudtrail.html
  (advanced event selectors: eventCategory Data, resources.type AWS::S3::Object, resources.ARN)
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.components.audit_trail import event_selectors
from stacks.config import AuditConfig, ConfigError, load_stage_config
from stacks.data_lake_stack import DataLakeStack
from tests.stacks.cdk_helpers import cdk_context
from tests.stacks.conftest import as_list, flatten, only

ORG_TRAIL = "arn:aws:cloudtrail:us-east-1:111122223333:trail/organization-trail"
PHI_BUCKET_PARTS = ("Raw", "Curated", "Artifacts", "Capture")


def _context(stage: str, **audit: Any) -> dict[str, Any]:
    context = copy.deepcopy(cdk_context())
    context["stages"][stage]["audit"].update(audit)
    return context


def _template(stage: str, **audit: Any) -> Template:
    context = _context(stage, **audit)
    app = App(context=context)
    return Template.from_stack(
        DataLakeStack(app, f"Test-{stage}", config=load_stage_config(context, stage))
    )


@pytest.fixture(scope="module")
def dev() -> Template:
    return _template("dev")


@pytest.fixture(scope="module")
def prod() -> Template:
    return _template("prod")


def _trail(template: Template) -> dict[str, Any]:
    return dict(only(template, "AWS::CloudTrail::Trail"))


def _audit_bucket(template: Template) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (bid, b)
        for bid, b in template.find_resources("AWS::S3::Bucket").items()
        if "ObjectLockConfiguration" in b["Properties"]
    ]
    return found


def _phi_bucket_ids(template: Template) -> set[str]:
    return {
        bid
        for bid in template.find_resources("AWS::S3::Bucket")
        if any(f"DataLake{part}Bucket" in bid for part in PHI_BUCKET_PARTS)
    }


def _trail_arn(stage: str) -> str:
    return f"arn:<ref>:cloudtrail:<ref>:<ref>:trail/readmission-{stage}-audit"


def test_trail_is_multi_region_validated_encrypted_and_sent_to_cloudwatch(
    dev: Template,
) -> None:
    trail = _trail(dev)
    assert trail["TrailName"] == "readmission-dev-audit"
    assert trail["IsLogging"] is True
    assert trail["IsMultiRegionTrail"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    assert trail["EnableLogFileValidation"] is True
    (audit_key,) = [k for k in dev.find_resources("AWS::KMS::Key") if "AuditTrail" in k]
    assert trail["KMSKeyId"] == {"Fn::GetAtt": [audit_key, "Arn"]}
    assert trail["S3BucketName"] == {"Ref": _audit_bucket(dev)[0]}
    assert "CloudWatchLogsLogGroupArn" in trail
    assert "CloudWatchLogsRoleArn" in trail
    log_group = only(dev, "AWS::Logs::LogGroup")
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": [audit_key, "Arn"]}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_trail_records_management_events_and_object_events_of_every_phi_bucket(
    stage: str,
) -> None:
    template = _template(stage)
    selectors = {s["Name"]: s["FieldSelectors"] for s in _trail(template)["AdvancedEventSelectors"]}
    assert "EventSelectors" not in _trail(template)  # basic and advanced selectors exclude
    management, data = selectors.values()
    assert management == [{"Field": "eventCategory", "Equals": ["Management"]}]
    fields = {f["Field"]: f for f in data}
    assert fields["eventCategory"]["Equals"] == ["Data"]
    assert fields["resources.type"]["Equals"] == ["AWS::S3::Object"]
    prefixes = fields["resources.ARN"]["StartsWith"]
    recorded = {p["Fn::Join"][1][0]["Fn::GetAtt"][0] for p in prefixes}
    assert recorded == _phi_bucket_ids(template)
    assert {p["Fn::Join"][1][1] for p in prefixes} == {"/"}
    # every read and write: no readOnly filter
    assert "readOnly" not in fields


@pytest.mark.parametrize(
    ("stage", "mode", "days"), [("dev", "GOVERNANCE", 30), ("prod", "COMPLIANCE", 2192)]
)
def test_trail_bucket_locks_log_files_for_the_stage_retention(
    stage: str, mode: str, days: int
) -> None:
    template = _template(stage)
    _, bucket = _audit_bucket(template)
    props = bucket["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Days": days, "Mode": mode}},
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["DeletionPolicy"] == "Retain"
    assert "LoggingConfiguration" in props
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # Log files never expire while still locked.
    expirations = [
        r["ExpirationInDays"]
        for r in props["LifecycleConfiguration"]["Rules"]
        if "ExpirationInDays" in r
    ]
    assert expirations
    assert min(expirations) >= days


def _bucket_statements(template: Template, bucket_id: str) -> list[dict[str, Any]]:
    (policy,) = [
        p
        for p in template.find_resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_only_this_trail_may_write_to_the_trail_bucket(dev: Template) -> None:
    bucket_id, _ = _audit_bucket(dev)
    statements = _bucket_statements(dev, bucket_id)
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert {a for s in allows for a in as_list(s["Action"])} == {"s3:GetBucketAcl", "s3:PutObject"}
    for statement in allows:
        assert statement["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        assert flatten(statement["Condition"]["StringEquals"]["aws:SourceArn"]) == _trail_arn("dev")
    (write,) = [s for s in allows if s["Action"] == "s3:PutObject"]
    assert flatten(write["Resource"]).endswith("/AWSLogs/<ref>/*")
    assert write["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
    (deny,) = [s for s in statements if s.get("Sid") == "DenyWritesOtherThanCloudTrail"]
    assert deny["NotPrincipal"] == {"Service": "cloudtrail.amazonaws.com"}


def test_trail_key_lets_cloudtrail_encrypt_for_this_trail_only(dev: Template) -> None:
    (key,) = [k for kid, k in dev.find_resources("AWS::KMS::Key").items() if "AuditTrail" in kid]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    cloudtrail = [
        s for s in statements if s["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    ]
    assert {s["Action"] for s in cloudtrail} == {"kms:GenerateDataKey*", "kms:DescribeKey"}
    for statement in cloudtrail:
        assert flatten(statement["Condition"]["StringEquals"]["aws:SourceArn"]) == _trail_arn("dev")
    (encrypt,) = [s for s in cloudtrail if s["Action"] == "kms:GenerateDataKey*"]
    assert (
        flatten(encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"])
        == "arn:<ref>:cloudtrail:*:<ref>:trail/*"
    )
    account = [s for s in statements if "AWS" in s["Principal"] and "Condition" not in s]
    (admin,) = account
    assert not [
        a
        for a in admin["Action"]
        if a.startswith(("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"))
    ]


def test_an_existing_trail_creates_none_and_states_the_selectors_it_needs() -> None:
    template = _template("prod", existing_trail_arn=ORG_TRAIL)
    template.resource_count_is("AWS::CloudTrail::Trail", 0)
    template.resource_count_is("AWS::KMS::Key", 1)  # the data key only
    assert not [
        b
        for b in template.find_resources("AWS::S3::Bucket").values()
        if "ObjectLockConfiguration" in b["Properties"]
    ]
    outputs = template.to_json()["Outputs"]
    assert outputs["AuditTrailArn"]["Value"] == ORG_TRAIL
    parts = outputs["RequiredTrailEventSelectors"]["Value"]["Fn::Join"][1]
    buckets = [p["Fn::GetAtt"][0] for p in parts if isinstance(p, dict)]
    assert set(buckets) == _phi_bucket_ids(template)
    text = "".join(p if isinstance(p, str) else "arn:bucket" for p in parts)
    assert json.loads(text) == event_selectors(["arn:bucket"] * len(buckets))


def test_selectors_name_each_bucket_as_an_object_arn_prefix() -> None:
    selectors = event_selectors(["arn:aws:s3:::raw", "arn:aws:s3:::capture"])
    assert selectors[1]["FieldSelectors"][2] == {
        "Field": "resources.ARN",
        "StartsWith": ["arn:aws:s3:::raw/", "arn:aws:s3:::capture/"],
    }


@pytest.mark.parametrize(
    ("audit", "message"),
    [
        ({"existing_trail_arn": "organization-trail"}, "existing_trail_arn=.* does not match"),
        ({"existing_trail_arn": 42}, "existing_trail_arn must be str"),
        ({"object_lock_mode": "governance"}, "object_lock_mode=.* must be one of"),
        ({"object_lock_days": 0}, r"object_lock_days=0 is outside"),
        ({"object_lock_days": 400}, "object_lock_days=400 exceeds retention.audit_log_days=365"),
    ],
)
def test_bad_audit_settings_fail_by_their_path(audit: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"context\.stages\.dev\.audit\.{message}"):
        load_stage_config(_context("dev", **audit), "dev")


def test_an_absent_existing_trail_reads_as_none() -> None:
    """The CDK CLI drops null context values: absent and null both mean "create a trail"."""
    context = _context("dev")
    del context["stages"]["dev"]["audit"]["existing_trail_arn"]
    assert load_stage_config(context, "dev").audit.existing_trail_arn is None
    assert load_stage_config(_context("dev", existing_trail_arn=ORG_TRAIL), "dev").audit == (
        AuditConfig(ORG_TRAIL, "GOVERNANCE", 30)
    )
