"""The dev-to-prod pipeline: source, stages, tests, smoke test, approval, accounts, registry.

Synthesized once (cdk-nag attached: an unacknowledged finding fails the fixture) with the
pipeline enabled for two made-up accounts.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from app import PIPELINE_STACK_NAME, STACK_NAMES, build_app
from stacks.config import ConfigError, load_pipeline_config
from stacks.pipeline_stack import PipelineStack
from tests.stacks.cdk_helpers import cdk_context
from tests.stacks.conftest import Synthesized, flatten, only

DEV_ACCOUNT = "111111111111"
PROD_ACCOUNT = "222222222222"
REGION = "eu-west-1"
CONNECTION = (
    f"arn:aws:codeconnections:{REGION}:{DEV_ACCOUNT}:connection/"
    "12345678-1234-1234-1234-123456789012"
)
PIPELINE: dict[str, Any] = {
    "enabled": True,
    "connection_arn": CONNECTION,
    "repository": "example-org/readmission-platform",
    "branch": "main",
    "dev": {"account": DEV_ACCOUNT, "region": REGION},
    "prod": {"account": PROD_ACCOUNT, "region": REGION},
}


@dataclass(frozen=True)
class PipelineApp:
    template: Template
    stack: PipelineStack
    stages: dict[str, dict[str, Template]]

    def stage_actions(self, name: str) -> list[dict[str, Any]]:
        codepipeline = only(self.template, "AWS::CodePipeline::Pipeline")
        (stage,) = [s for s in codepipeline["Stages"] if s["Name"] == name]
        return list(stage["Actions"])


def _context(**pipeline: Any) -> dict[str, Any]:
    context = copy.deepcopy(cdk_context())
    context["pipeline"] = {**PIPELINE, **pipeline}
    return context


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> PipelineApp:
    outdir: Path = tmp_path_factory.mktemp("cdk-pipeline")
    app = build_app(App(context=_context(), outdir=str(outdir)))
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    assert [s.stack_name for s in assembly.stacks] == [PIPELINE_STACK_NAME]
    stack = app.node.find_child(PIPELINE_STACK_NAME)
    assert isinstance(stack, PipelineStack)
    stages = {}
    for name, stage in (("dev", stack.dev_stage), ("prod", stack.prod_stage)):
        stage_assembly = stage.synth()
        stages[name] = {
            s.stack_name.rsplit("-", 1)[-1]: Template.from_json(s.template)
            for s in stage_assembly.stacks
        }
    return PipelineApp(Template.from_json(assembly.stacks[0].template), stack, stages)


def test_source_is_the_configured_codeconnections_repository_and_branch(
    synthesized: PipelineApp,
) -> None:
    (source,) = synthesized.stage_actions("Source")
    assert source["ActionTypeId"] == {
        "Category": "Source",
        "Owner": "AWS",
        "Provider": "CodeStarSourceConnection",
        "Version": "1",
    }
    assert source["Configuration"] == {
        "ConnectionArn": CONNECTION,
        "FullRepositoryId": "example-org/readmission-platform",
        "BranchName": "main",
    }


def test_stages_run_in_order_dev_before_the_approval_before_prod(
    synthesized: PipelineApp,
) -> None:
    codepipeline = only(synthesized.template, "AWS::CodePipeline::Pipeline")
    assert [s["Name"] for s in codepipeline["Stages"]] == [
        "Source",
        "Build",
        "UpdatePipeline",
        "Assets",
        "Dev",
        "Prod",
    ]
    prod = synthesized.stage_actions("Prod")
    approval = [a for a in prod if a["ActionTypeId"]["Category"] == "Approval"]
    assert [a["Name"] for a in approval] == ["PromoteToProd"]
    deploys = [a for a in prod if a["ActionTypeId"]["Category"] == "Deploy"]
    assert len(deploys) == 2 * len(STACK_NAMES)  # prepare + execute for each of the stacks
    assert approval[0]["RunOrder"] < min(a["RunOrder"] for a in deploys)


def test_the_test_suite_and_smoke_test_run_after_every_dev_deploy(
    synthesized: PipelineApp,
) -> None:
    dev = synthesized.stage_actions("Dev")
    deploys = [a for a in dev if a["ActionTypeId"]["Category"] == "Deploy"]
    checks = {a["Name"]: a for a in dev if a["ActionTypeId"]["Category"] == "Build"}
    assert set(checks) == {"TestSuite", "SmokeTest"}
    last_deploy = max(a["RunOrder"] for a in deploys)
    assert all(a["RunOrder"] > last_deploy for a in checks.values())
    projects = synthesized.template.find_resources("AWS::CodeBuild::Project")
    specs = {
        lid: json.loads(p["Properties"]["Source"]["BuildSpec"])
        for lid, p in projects.items()
        if "BuildSpec" in p["Properties"]["Source"]
    }
    (suite_id,) = [lid for lid in specs if "TestSuite" in lid]
    suite = projects[suite_id]["Properties"]
    assert suite["Environment"]["ComputeType"] == "BUILD_GENERAL1_MEDIUM"
    assert suite["TimeoutInMinutes"] == 60
    (tests,) = [s for lid, s in specs.items() if "TestSuite" in lid]
    assert tests["phases"]["build"]["commands"] == ["make test"]
    assert tests["phases"]["install"]["runtime-versions"] == {"python": "3.11", "nodejs": "20"}
    (smoke,) = [s for lid, s in specs.items() if "SmokeTest" in lid]
    assert smoke["phases"]["build"]["commands"] == [
        'python scripts/smoke_test.py --api-url "$API_URL" --region "$AWS_REGION"'
    ]
    # the API URL comes from the dev stage's Api stack output, as a pipeline variable
    env = json.loads(flatten(checks["SmokeTest"]["Configuration"]["EnvironmentVariables"]))
    (api_url,) = [v for v in env if v["name"] == "API_URL"]
    assert api_url["type"] == "PLAINTEXT"
    assert api_url["value"].endswith(".ApiUrl}")


def test_the_smoke_test_may_invoke_only_health_and_predict_in_the_dev_account(
    synthesized: PipelineApp,
) -> None:
    invokes = [
        statement
        for policy in synthesized.template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "execute-api:Invoke" in json.dumps(statement["Action"])
    ]
    assert len(invokes) == 1
    assert invokes[0]["Action"] == "execute-api:Invoke"
    assert sorted(flatten(r) for r in invokes[0]["Resource"]) == [
        f"arn:<ref>:execute-api:{REGION}:{DEV_ACCOUNT}:*/*/GET/health",
        f"arn:<ref>:execute-api:{REGION}:{DEV_ACCOUNT}:*/*/POST/predict",
    ]


def test_each_stage_deploys_with_its_own_accounts_bootstrap_role(
    synthesized: PipelineApp,
) -> None:
    for stage, account in (("Dev", DEV_ACCOUNT), ("Prod", PROD_ACCOUNT)):
        deploys = [
            a for a in synthesized.stage_actions(stage) if a["ActionTypeId"]["Category"] == "Deploy"
        ]
        roles = {flatten(a["RoleArn"]) for a in deploys}
        assert roles == {
            f"arn:<ref>:iam::{account}:role/cdk-hnb659fds-deploy-role-{account}-{REGION}"
        }


def test_artifacts_are_encrypted_with_a_rotated_key_prod_can_use(
    synthesized: PipelineApp,
) -> None:
    bucket = only(synthesized.template, "AWS::S3::Bucket")
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key = only(synthesized.template, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    principals = json.dumps(key["KeyPolicy"])
    assert f"cdk-hnb659fds-deploy-role-{PROD_ACCOUNT}" in principals


def test_dev_registry_lets_prod_describe_versions_and_nothing_more(
    synthesized: PipelineApp,
) -> None:
    """The SageMaker cross-account pattern: the owner's model package group policy grants
    the consumer account Describe/List (PutModelPackageGroupPolicy example of
    https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-ram-discover.html)."""
    group = only(synthesized.stages["dev"]["Registry"], "AWS::SageMaker::ModelPackageGroup")
    statements = {s["Sid"]: s for s in group["ModelPackageGroupPolicy"]["Statement"]}
    reader = statements["ReaderAccountsDescribeVersions"]
    assert reader["Effect"] == "Allow"
    assert flatten(reader["Principal"]["AWS"]).endswith(f":iam::{PROD_ACCOUNT}:root")
    assert sorted(reader["Action"]) == [
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListModelPackages",
    ]
    # approval stays with each account's own approver
    assert statements["OnlyApproversChangeApprovalStatus"]["Effect"] == "Deny"
    prod_group = only(synthesized.stages["prod"]["Registry"], "AWS::SageMaker::ModelPackageGroup")
    prod_sids = {s["Sid"] for s in prod_group["ModelPackageGroupPolicy"]["Statement"]}
    assert "ReaderAccountsDescribeVersions" not in prod_sids
    assert "OnlyApproversChangeApprovalStatus" in prod_sids


def test_stages_keep_their_own_configuration(synthesized: PipelineApp) -> None:
    assert set(synthesized.stages["dev"]) == set(synthesized.stages["prod"])
    synthesized.stages["prod"]["Monitoring"].has_resource_properties(
        "AWS::SNS::Subscription", {"Endpoint": "ml-platform-oncall@example.org"}
    )
    synthesized.stages["dev"]["Monitoring"].has_resource_properties(
        "AWS::SNS::Subscription", {"Endpoint": "ml-platform-dev@example.org"}
    )


def test_disabled_pipeline_leaves_the_single_account_app_unchanged(dev: Synthesized) -> None:
    """cdk.json ships with the pipeline off: ``cdk deploy`` deploys one stage's stacks."""
    assert load_pipeline_config(cdk_context()) is None
    assert sorted(dev.templates) == sorted(STACK_NAMES)
    group = only(dev["Registry"], "AWS::SageMaker::ModelPackageGroup")
    sids = {s["Sid"] for s in group["ModelPackageGroupPolicy"]["Statement"]}
    assert "ReaderAccountsDescribeVersions" not in sids


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prod": {"account": DEV_ACCOUNT, "region": REGION}}, "prod.account must differ"),
        ({"connection_arn": "arn:aws:codecommit:eu-west-1:111111111111:repo"}, "connection_arn"),
        ({"connection_arn": None}, "connection_arn must be str"),
        ({"dev": {"account": "1234", "region": REGION}}, "pipeline.dev.account"),
        ({"repository": "not a repo"}, "pipeline.repository"),
    ],
)
def test_an_enabled_pipeline_needs_a_connection_and_two_accounts(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_pipeline_config(_context(**change))


def test_the_older_codestar_connection_arn_is_accepted() -> None:
    legacy = CONNECTION.replace("codeconnections", "codestar-connections")
    config = load_pipeline_config(_context(connection_arn=legacy))
    assert config is not None
    assert config.connection_arn == legacy


def test_the_pipeline_is_named_after_the_project(synthesized: PipelineApp) -> None:
    synthesized.template.has_resource_properties(
        "AWS::CodePipeline::Pipeline", {"Name": Match.exact("readmission-dev-to-prod")}
    )
