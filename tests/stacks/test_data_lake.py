"""The data lake's protections, asserted on the synthesized templates.

The first tests build the DataLake stack alone; the perimeter tests at the end hold the
resource policies of the data key, the PHI buckets and the de-identification secret against
every IAM policy of the whole synthesized app (both stages).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from contracts.drift import baseline_s3_key
from lambdas.deployer.baseline import versioned_baseline_key
from stacks.components.drift_monitor import CAPTURE_PREFIX, GROUND_TRUTH_PREFIX
from stacks.config import ETL_SOURCES, load_stage_config
from stacks.data_lake_stack import DataLakeStack
from tests.stacks.cdk_helpers import cdk_context
from tests.stacks.conftest import Synthesized, as_list, flatten

DATA_BUCKETS = 4  # raw, curated, artifacts, capture
#: The access-log bucket and the audit trail's bucket.
SERVICE_BUCKETS = 2
ENDPOINT = "readmission-dev-endpoint"
#: Cryptographic KMS actions: who may perform them decides who reads PHI.
KMS_USE = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt", "kms:CreateGrant")


def _template(stage: str) -> Template:
    config = load_stage_config(cdk_context(), stage)
    app = App(context=cdk_context())  # the feature flags of cdk.json, as the CLI passes them
    stack = DataLakeStack(app, f"Test-{stage}", config=config)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def lake_dev() -> Template:
    return _template("dev")


@pytest.fixture(scope="module")
def lake_prod() -> Template:
    return _template("prod")


def _buckets(template: Template) -> Mapping[str, Any]:
    return template.find_resources("AWS::S3::Bucket")


def _bucket_id(template: Template, part: str) -> str:
    (found,) = [bid for bid in _buckets(template) if part in bid]
    return found


def _audit_bucket_id(template: Template) -> str:
    (found,) = [
        bid for bid, b in _buckets(template).items() if "ObjectLockConfiguration" in b["Properties"]
    ]
    return found


def test_kms_keys_rotate(lake_dev: Template) -> None:
    lake_dev.resource_count_is("AWS::KMS::Key", 2)  # the data key and the audit trail's key
    for key in lake_dev.find_resources("AWS::KMS::Key").values():
        assert key["Properties"]["EnableKeyRotation"] is True


def test_data_buckets_use_the_kms_key_and_the_log_bucket_sse_s3(lake_dev: Template) -> None:
    buckets = _buckets(lake_dev)
    assert len(buckets) == DATA_BUCKETS + SERVICE_BUCKETS
    algorithms = sorted(
        b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        for b in buckets.values()
    )
    assert algorithms == ["AES256"] + ["aws:kms"] * (DATA_BUCKETS + 1)
    lake_dev.has_resource_properties(
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


def test_every_bucket_blocks_public_access_and_is_versioned(lake_dev: Template) -> None:
    for bucket in _buckets(lake_dev).values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_every_data_bucket_logs_to_the_access_log_bucket(lake_dev: Template) -> None:
    buckets = _buckets(lake_dev)
    log_bucket_ids = [
        bid for bid, b in buckets.items() if "LoggingConfiguration" not in b["Properties"]
    ]
    assert len(log_bucket_ids) == 1
    for bid, bucket in buckets.items():
        if bid == log_bucket_ids[0]:
            continue
        destination = bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"]
        assert destination == {"Ref": log_bucket_ids[0]}


def test_every_bucket_policy_denies_plain_http_and_old_tls(lake_dev: Template) -> None:
    policies = lake_dev.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == DATA_BUCKETS + SERVICE_BUCKETS
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denies = [s for s in statements if s["Effect"] == "Deny"]
        conditions = [s.get("Condition", {}) for s in denies]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def _expiring_rules(bucket: Mapping[str, Any]) -> list[dict[str, Any]]:
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    return [rule for rule in rules if "ExpirationInDays" in rule]


def test_lifecycle_follows_the_stage_retention(lake_dev: Template, lake_prod: Template) -> None:
    def expirations(template: Template) -> set[int]:
        return {
            rule["ExpirationInDays"]
            for bucket in _buckets(template).values()
            for rule in _expiring_rules(bucket)
        }

    # raw and access logs 365, capture 90, audit trail log files 365 (dev) / 2557 (prod)
    assert expirations(lake_dev) == {365, 90}
    assert expirations(lake_prod) == {2555, 365, 2557}


def _expires(bucket: Mapping[str, Any], key: str) -> bool:
    """Whether an enabled expiration rule of the bucket covers the object ``key``."""
    return any(
        rule["Status"] == "Enabled" and key.startswith(rule.get("Prefix", ""))
        for rule in _expiring_rules(bucket)
    )


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_capture_expires_but_baselines_and_ground_truth_are_kept(stage: str) -> None:
    """What the drift monitor compares capture with must outlive the capture it expires."""
    template = _template(stage)
    capture = _buckets(template)[_bucket_id(template, "Capture")]
    kept = [
        baseline_s3_key(ENDPOINT),
        versioned_baseline_key(ENDPOINT, 7),
        f"{GROUND_TRUTH_PREFIX}/2024/05/01/labels.jsonl",
    ]
    for key in kept:
        assert not _expires(capture, key), key
    assert _expires(capture, f"{CAPTURE_PREFIX}/{ENDPOINT}/AllTraffic/2024/05/01/10/x.jsonl")


def test_prod_retains_data_and_dev_does_not(lake_dev: Template, lake_prod: Template) -> None:
    assert {b["DeletionPolicy"] for b in _buckets(lake_prod).values()} == {"Retain"}
    audit = _audit_bucket_id(lake_dev)
    assert {b["DeletionPolicy"] for bid, b in _buckets(lake_dev).items() if bid != audit} == {
        "Delete"
    }
    # Audit logs (Object Lock) and the keys outlive the stack in every stage: destroying a key
    # would make backups and logs unreadable.
    assert _buckets(lake_dev)[audit]["DeletionPolicy"] == "Retain"
    assert {k["DeletionPolicy"] for k in lake_dev.find_resources("AWS::KMS::Key").values()} == {
        "Retain"
    }


def test_glue_catalog_database_points_at_the_curated_features(lake_dev: Template) -> None:
    lake_dev.has_resource_properties(
        "AWS::Glue::Database",
        {"DatabaseInput": {"Name": "readmission_dev", "LocationUri": Match.any_value()}},
    )


# --- Who can read PHI: the data key's policy ----------------------------------------------


def _data_key_statements(template: Template) -> list[dict[str, Any]]:
    (key,) = [k for kid, k in template.find_resources("AWS::KMS::Key").items() if "DataKey" in kid]
    return list(key["Properties"]["KeyPolicy"]["Statement"])


def _is_crypto(action: str) -> bool:
    return action in ("kms:*", "*") or action.startswith(KMS_USE)


def _role_names(condition_value: Any) -> set[str]:
    """Role names of a list of role ARNs (``arn:<ref>:iam::<ref>:role/<name>``)."""
    return {flatten(arn).rsplit(":role/", 1)[1] for arn in as_list(condition_value)}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_data_key_lets_the_account_administer_it_but_only_platform_roles_use_it(
    stage: str,
) -> None:
    """Root's kms:* is no PHI access control: every use of the key is conditioned."""
    statements = _data_key_statements(_template(stage))
    unconditioned = [s for s in statements if "Condition" not in s]
    assert len(unconditioned) == 1
    assert not [a for a in as_list(unconditioned[0]["Action"]) if _is_crypto(a)]
    assert "kms:PutKeyPolicy" in unconditioned[0]["Action"]  # the key stays manageable
    for statement in statements:
        crypto = [a for a in as_list(statement["Action"]) if _is_crypto(a)]
        if not crypto:
            continue
        condition = statement["Condition"]
        by_role = condition.get("ArnEquals", {}).get("aws:PrincipalArn")
        if by_role is not None:
            assert _role_names(by_role) <= {
                f"readmission-{stage}-{purpose}"
                for purpose in (
                    *("etl", "training", "serving", "approver", "ingest"),
                    *("predict", "deployer", "registrar", "drift-monitor", "batch-writer"),
                )
            }
            continue
        # The one other use: Secrets Manager, for the de-identification secret only.
        assert set(crypto) == {"kms:Decrypt", "kms:GenerateDataKey"}
        assert flatten(condition["StringEquals"]["kms:ViaService"]).startswith("secretsmanager.")
        assert flatten(condition["ArnLike"]["kms:EncryptionContext:SecretARN"]).endswith(
            f":secret:readmission-{stage}/deidentification-key-??????"
        )


def test_sagemaker_grants_are_for_aws_resources_and_describe_key_is_unconditioned(
    lake_dev: Template,
) -> None:
    """kms:GrantIsForAWSResource only guards grant actions (on DescribeKey it never matches)."""
    grants = [
        s
        for s in _data_key_statements(lake_dev)
        if "kms:GrantIsForAWSResource" in s.get("Condition", {}).get("Bool", {})
    ]
    assert len(grants) == 1
    assert set(as_list(grants[0]["Action"])) == {
        "kms:CreateGrant",
        "kms:ListGrants",
        "kms:RevokeGrant",
    }
    assert _role_names(grants[0]["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == {
        "readmission-dev-training",
        "readmission-dev-serving",
        "readmission-dev-deployer",
    }


# --- Who can read PHI: the bucket policies ---------------------------------------------------

#: Who may read or write objects of each PHI bucket, by role purpose (stacks.naming).
EXPECTED_BUCKET_ROLES = {
    "Raw": {"etl", "ingest"},
    # serving: the nightly transform job reads the day and writes its output as the model's
    # role; batch-writer: the worklist writer (stacks/components/batch_scoring.py);
    # registrar: manifest.json only, by its IAM (stacks/components/training_pipeline.py).
    "Curated": {"etl", "training", "serving", "batch-writer", "registrar"},
    "Artifacts": {"training", "serving", "deployer", "registrar", "approver"},
    "Capture": {"serving", "deployer", "drift-monitor", "ingest"},
}


def _policy_of(template: Template, bucket_id: str) -> list[dict[str, Any]]:
    (policy,) = [
        p
        for p in template.find_resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _object_denies(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if s["Effect"] == "Deny"
        and s.get("Principal") == {"AWS": "*"}
        and "aws:PrincipalArn" in s.get("Condition", {}).get("ArnNotEquals", {})
    ]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_phi_bucket_denies_object_access_to_all_but_its_roles(stage: str) -> None:
    template = _template(stage)
    for part, purposes in EXPECTED_BUCKET_ROLES.items():
        (deny,) = _object_denies(_policy_of(template, _bucket_id(template, part)))
        assert {"s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*"} <= set(deny["Action"])
        assert flatten(deny["Resource"]).endswith("/*")
        assert _role_names(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == {
            f"readmission-{stage}-{purpose}" for purpose in purposes
        }


def test_buckets_written_by_aws_services_carry_no_role_deny(lake_dev: Template) -> None:
    """S3 log delivery and CloudTrail write as service principals: no role-only deny there."""
    for bid in (_bucket_id(lake_dev, "AccessLogs"), _audit_bucket_id(lake_dev)):
        assert _object_denies(_policy_of(lake_dev, bid)) == []


def test_ingest_role_writes_extracts_and_labels_and_reads_nothing(lake_dev: Template) -> None:
    role = next(
        props
        for props in (r["Properties"] for r in lake_dev.find_resources("AWS::IAM::Role").values())
        if props.get("RoleName") == "readmission-dev-ingest"
    )
    assert "root" in flatten(role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"])
    statements = [
        s
        for p in lake_dev.find_resources("AWS::IAM::Policy").values()
        if any("IngestRole" in r["Ref"] for r in p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith(("s3:GetObject", "s3:List"))}
    written = {
        flatten(r).split("/", 1)[1]
        for s in statements
        for r in as_list(s["Resource"])
        if "s3:PutObject" in as_list(s["Action"])
    }
    # One raw prefix per ETL source (stacks.config.ETL_SOURCES), and the outcomes feed.
    assert written == {f"{source}/*" for source in ETL_SOURCES} | {f"{GROUND_TRUTH_PREFIX}/*"}


# --- Across the whole app: every role that reaches PHI is a role the policies name -----------


def _walk_refs(value: Any, stack: str, exports: Mapping[str, tuple[str, str]]) -> Iterator[Any]:
    """``(stack, logical id)`` of every resource a CloudFormation value refers to."""
    if isinstance(value, list):
        for item in value:
            yield from _walk_refs(item, stack, exports)
    elif isinstance(value, dict):
        if "Ref" in value and not str(value["Ref"]).startswith("AWS::"):
            yield (stack, value["Ref"])
        elif "Fn::GetAtt" in value:
            yield (stack, value["Fn::GetAtt"][0])
        elif "Fn::ImportValue" in value and isinstance(value["Fn::ImportValue"], str):
            yield exports[value["Fn::ImportValue"]]
        else:
            for item in value.values():
                yield from _walk_refs(item, stack, exports)


def _exports(app: Synthesized) -> dict[str, tuple[str, str]]:
    found = {}
    for stack, template in app.templates.items():
        for output in template.to_json().get("Outputs", {}).values():
            if "Export" in output:
                (ref,) = _walk_refs(output["Value"], stack, {})
                found[output["Export"]["Name"]] = ref
    return found


def _phi_resources(app: Synthesized) -> dict[tuple[str, str], tuple[str, set[str]]]:
    """PHI resource ``(stack, logical id)`` -> (label, role names its resource policy allows)."""
    lake = app["DataLake"]
    found: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for part in EXPECTED_BUCKET_ROLES:
        bucket = _bucket_id(lake, f"DataLake{part}")
        (deny,) = _object_denies(_policy_of(lake, bucket))
        allowed = _role_names(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
        found[("DataLake", bucket)] = (part.lower(), allowed)
    (key_id,) = [k for k in lake.find_resources("AWS::KMS::Key") if "DataKey" in k]
    (use,) = [s for s in _data_key_statements(lake) if s.get("Sid") == "PlatformRolesUseTheKey"]
    found[("DataLake", key_id)] = (
        "data key",
        _role_names(use["Condition"]["ArnEquals"]["aws:PrincipalArn"]),
    )
    (secret_policy,) = app["Etl"].find_resources("AWS::SecretsManager::ResourcePolicy").values()
    (deny,) = secret_policy["Properties"]["ResourcePolicy"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Action"] == "secretsmanager:GetSecretValue"
    secret = ("Etl", secret_policy["Properties"]["SecretId"]["Ref"])
    found[secret] = (
        "deid secret",
        _role_names(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]),
    )
    return found


def _reaches(label: str, actions: set[str]) -> bool:
    """Whether IAM actions on a PHI resource read, write or decrypt its data."""
    if label == "data key":
        return any(
            a.startswith(
                (
                    "kms:Decrypt",
                    "kms:Encrypt",
                    "kms:GenerateDataKey",
                    "kms:ReEncrypt",
                    "kms:CreateGrant",
                )
            )
            or a == "kms:*"
            for a in actions
        )
    if label == "deid secret":
        return bool(actions & {"secretsmanager:GetSecretValue", "secretsmanager:*"})
    return any(
        a.startswith(("s3:GetObject", "s3:PutObject", "s3:DeleteObject")) or a == "s3:*"
        for a in actions
    )


def _role_name(template: Template, role_id: str) -> str:
    role = template.to_json()["Resources"][role_id]
    return str(role["Properties"].get("RoleName", f"<unnamed {role_id}>"))


def _who_reaches(app: Synthesized) -> set[tuple[str, str]]:
    """``(resource label, role name)`` for every IAM grant on a PHI resource in the app."""
    exports = _exports(app)
    phi = _phi_resources(app)
    found = set()
    for stack, template in app.templates.items():
        for policy in template.find_resources("AWS::IAM::Policy").values():
            roles = [r["Ref"] for r in policy["Properties"].get("Roles", [])]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] != "Allow":
                    continue
                actions = set(as_list(statement["Action"]))
                for ref in set(_walk_refs(statement.get("Resource"), stack, exports)):
                    if ref in phi and _reaches(phi[ref][0], actions):
                        found |= {(phi[ref][0], _role_name(template, r)) for r in roles}
    return found


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_role_that_reaches_phi_is_one_its_resource_policy_names(
    stage: str, request: pytest.FixtureRequest
) -> None:
    """Both directions: no role is granted PHI that the resource policy would deny (it would
    fail in AWS), and every role a policy allows exists in the app under exactly that name."""
    app: Synthesized = request.getfixturevalue(stage)
    phi = _phi_resources(app)
    reaching = _who_reaches(app)
    assert {label for label, _ in reaching} == {label for label, _ in phi.values()}
    allowed = dict(phi.values())
    denied = {(label, role) for label, role in reaching if role not in allowed[label]}
    assert denied == set()
    roles = {
        str(r["Properties"].get("RoleName"))
        for template in app.templates.values()
        for r in template.find_resources("AWS::IAM::Role").values()
    }
    named = set().union(*allowed.values())
    assert named - roles == set()


# --- Across the whole app: no service principal without its source ------------------------

#: Condition keys that confine a service principal to this account's resources: the global
#: confused-deputy keys, and the encryption context CloudWatch Logs documents for key
#: policies (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
SOURCE_KEYS = {
    "aws:SourceArn",
    "aws:SourceAccount",
    "aws:SourceOrgID",
    "kms:EncryptionContext:aws:logs:arn",
}
#: Role trust policies are left out: a service can assume a role only when someone with
#: iam:PassRole in this account hands it over, so they carry no confused-deputy exposure.
TRUST_POLICY_TYPES = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}


def _policy_documents(value: Any) -> Iterator[dict[str, Any]]:
    """Every policy document (``{"Statement": [...]}``) inside a resource's properties."""
    if isinstance(value, str) and '"Statement"' in value:
        yield from _policy_documents(json.loads(value))
    elif isinstance(value, dict):
        if isinstance(value.get("Statement"), list):
            yield value
        else:
            for item in value.values():
                yield from _policy_documents(item)
    elif isinstance(value, list):
        for item in value:
            yield from _policy_documents(item)


def _unconfined_service_principals(app: Synthesized) -> list[str]:
    found = []
    for stack, template in app.templates.items():
        for rid, resource in template.to_json()["Resources"].items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::Permission":
                if str(props["Principal"]).endswith(".amazonaws.com") and not (
                    {"SourceArn", "SourceAccount"} & set(props)
                ):
                    found.append(f"{stack}/{rid}: {props['Principal']}")
                continue
            if resource["Type"] in TRUST_POLICY_TYPES:
                continue
            for document in _policy_documents(props):
                for statement in document["Statement"]:
                    principal = statement.get("Principal")
                    if statement.get("Effect") != "Allow" or not isinstance(principal, dict):
                        continue
                    if "Service" not in principal:
                        continue
                    # Condition key names are case-insensitive (IAM JSON policy reference,
                    # "Condition element"); CloudFront's OAC policy spells "AWS:SourceArn".
                    keys = {k.lower() for op in statement.get("Condition", {}).values() for k in op}
                    if not keys & {key.lower() for key in SOURCE_KEYS}:
                        service = [flatten(s) for s in as_list(principal["Service"])]
                        found.append(f"{stack}/{rid} {statement.get('Sid', '')}: {service}")
    return found


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_service_principal_in_a_resource_policy_is_confined_to_its_source(
    stage: str, request: pytest.FixtureRequest
) -> None:
    app: Synthesized = request.getfixturevalue(stage)
    assert _unconfined_service_principals(app) == []
