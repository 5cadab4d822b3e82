"""BatchScoring stack: the worklist table, the nightly workflow, its rights and its alarms."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks.components.batch_scoring import instance_vcpus
from stacks.config import ConfigError, load_stage_config
from tests.stacks.cdk_helpers import cdk_context
from tests.stacks.conftest import (
    Synthesized,
    as_list,
    flatten,
    only,
    state_machine_definition,
    statements,
)
from tests.stacks.test_training_pipeline import STAR_BY_DOCUMENTATION, _resource_types

STACK = "BatchScoring"


def _states(dev: Synthesized) -> dict[str, Any]:
    return state_machine_definition(dev[STACK])["States"]


def test_worklist_table_is_on_demand_recoverable_encrypted_and_expiring(dev: Synthesized) -> None:
    table = only(dev[STACK], "AWS::DynamoDB::Table")
    assert table["TableName"] == "readmission-dev-worklist"
    assert table["KeySchema"] == [
        {"AttributeName": "day", "KeyType": "HASH"},
        {"AttributeName": "entry", "KeyType": "RANGE"},
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert "KMSMasterKeyId" in table["SSESpecification"]  # the stack's customer key
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    dev[STACK].has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_workflow_plans_finds_the_serving_model_scores_and_writes(dev: Synthesized) -> None:
    definition = state_machine_definition(dev[STACK])
    states = definition["States"]
    assert definition["StartAt"] == "Plan the day"
    assert states["Plan the day"]["Next"] == "Any discharges?"
    choice = states["Any discharges?"]
    assert choice["Choices"][0]["Next"] == "Find the serving endpoint config"
    assert choice["Default"] == "Write the worklist"
    assert states["Find the serving endpoint config"]["Next"] == "Find the serving model"
    assert states["Find the serving model"]["Next"] == "Score the day (Batch Transform)"
    assert states["Score the day (Batch Transform)"]["Next"] == "Write the worklist"
    assert states["Write the worklist"]["Next"] == "Scoring failed?"
    outcome = states["Scoring failed?"]
    assert outcome["Choices"][0] == {
        "Variable": "$.error",
        "IsPresent": True,
        "Next": "Scoring failed",
    }
    assert states["Scoring failed"]["Type"] == "Fail"
    describe = states["Find the serving endpoint config"]
    assert describe["Resource"].endswith(":states:::aws-sdk:sagemaker:describeEndpoint")
    assert describe["Parameters"] == {"EndpointName": "readmission-dev-endpoint"}


def test_the_transform_job_is_batch_transforms_line_protocol_encrypted(dev: Synthesized) -> None:
    score = _states(dev)["Score the day (Batch Transform)"]
    assert score["Resource"].endswith(":states:::sagemaker:createTransformJob.sync")
    parameters = score["Parameters"]
    assert parameters["ModelName.$"] == "$.serving.model"  # the endpoint's own model
    assert parameters["BatchStrategy"] == "MultiRecord"
    assert parameters["MaxPayloadInMB"] <= 6  # the container refuses bodies over 6 MiB
    assert parameters["MaxConcurrentTransforms"] == 2  # ml.m5.large: one per server worker
    assert parameters["TransformInput"]["SplitType"] == "Line"
    assert parameters["TransformInput"]["ContentType"] == "application/jsonlines"
    assert parameters["TransformOutput"]["AssembleWith"] == "Line"
    assert parameters["TransformOutput"]["Accept"] == "application/jsonlines"
    assert parameters["TransformOutput"]["KmsKeyId"]
    assert parameters["TransformResources"]["VolumeKmsKeyId"]
    assert parameters["TransformResources"]["InstanceType"] == "ml.m5.large"
    assert "ExecutionRoleArn" not in parameters
    assert "Tags" not in parameters


def test_failures_still_write_the_day_then_fail_the_run(dev: Synthesized) -> None:
    states = _states(dev)
    for name in (
        "Find the serving endpoint config",
        "Find the serving model",
        "Score the day (Batch Transform)",
    ):
        [catch] = states[name]["Catch"]
        assert catch == {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.error",
            "Next": "Write the worklist",
        }
    for name in ("Plan the day", "Write the worklist"):
        [catch] = states[name]["Catch"]
        assert catch["Next"] == "Scoring failed"
        retried = {e for r in states[name]["Retry"] for e in r["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.SdkClientException"} <= retried
    describe_retry = states["Find the serving endpoint config"]["Retry"][0]
    assert describe_retry["MaxAttempts"] == 3
    assert describe_retry["BackoffRate"] == 2
    # a transform job is never retried by the workflow: a second job would take the same name
    assert "Retry" not in states["Score the day (Batch Transform)"]
    write = states["Write the worklist"]["Parameters"]
    assert write["day.$"] == "$.plan.day"
    assert write["output_prefix.$"] == "$.plan.output_prefix"


def test_workflow_logs_without_execution_data_and_is_traced(dev: Synthesized) -> None:
    machine = only(dev[STACK], "AWS::StepFunctions::StateMachine")
    assert machine["StateMachineName"] == "readmission-dev-batch-scoring"
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert machine["TracingConfiguration"] == {"Enabled": True}


def test_nightly_rule_hands_the_schedule_time_to_the_workflow(
    dev: Synthesized, prod: Synthesized
) -> None:
    rule = only(dev[STACK], "AWS::Events::Rule")
    assert rule["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    assert target["InputTransformer"] == {
        "InputPathsMap": {"time": "$.time"},
        "InputTemplate": '{"scheduled_time":<time>}',
    }
    assert only(prod[STACK], "AWS::Events::Rule")["ScheduleExpression"] == "cron(0 5 * * ? *)"


def test_state_machine_rights_are_the_sync_patterns_and_nothing_more(dev: Synthesized) -> None:
    """createTransformJob.sync needs Create/Describe/StopTransformJob on the job, ListTags and
    the managed EventBridge rule (https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html);
    CreateTransformJob takes no role, so no iam:PassRole."""
    found = statements(dev[STACK], "StateMachineRole")
    actions = {a for s in found for a in as_list(s["Action"])}
    assert {
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopTransformJob",
        "sagemaker:ListTags",
        "events:PutRule",
        "events:PutTargets",
        "events:DescribeRule",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
    } <= actions
    assert "iam:PassRole" not in actions
    assert not any(a.endswith(":*") for a in actions)
    [jobs] = [s for s in found if "sagemaker:CreateTransformJob" in as_list(s["Action"])]
    assert [flatten(r) for r in as_list(jobs["Resource"])] == [
        "arn:<ref>:sagemaker:<ref>:<ref>:transform-job/readmission-dev-scoring-*"
    ] or all(
        "transform-job/readmission-dev-scoring-*" in flatten(r) for r in as_list(jobs["Resource"])
    )
    [rule] = [s for s in found if "events:PutRule" in as_list(s["Action"])]
    assert all(
        flatten(r).endswith("rule/StepFunctionsGetEventsForSageMakerTransformJobsRule")
        for r in as_list(rule["Resource"])
    )


def test_every_action_exists_and_star_only_where_the_reference_allows(dev: Synthesized) -> None:
    """Each action of this stack's policies is in the Service Authorization Reference (cfn-lint's
    copy), and '*' is granted only to actions without a resource type or where AWS's guide
    grants it so."""
    reference = _resource_types()
    offending = []
    for policy in dev[STACK].find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in as_list(statement["Action"]):
                service, name = action.split(":")
                if "*" in name:
                    continue
                known = reference[service]["Actions"].get(name.lower())
                if known is None:
                    offending.append(f"unknown {action}")
                    continue
                on_star = "*" in as_list(statement["Resource"]) and known.get("Resources")
                exempt = action in STAR_BY_DOCUMENTATION or action.startswith(
                    ("xray:", "logs:", "ec2:")
                )
                if on_star and not exempt:
                    offending.append(f"{action} on *")
    assert not offending, offending


def test_writer_reads_the_day_writes_scores_and_the_table_only(dev: Synthesized) -> None:
    found = statements(dev[STACK], "WriterRole")
    dynamo = [s for s in found if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    actions = {a for s in dynamo for a in as_list(s["Action"])}
    assert actions == {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchWriteItem"}
    objects = {
        (a, flatten(r).split("/", 1)[-1])
        for s in found
        for a in as_list(s["Action"])
        if a.startswith("s3:") and a != "s3:ListBucket"
        for r in as_list(s["Resource"])
    }
    assert ("s3:GetObject", "discharges/*") in objects
    assert ("s3:GetObject", "batch-scoring/output/*") in objects
    assert ("s3:PutObject", "worklist-scores/*") in objects
    assert ("s3:PutObject", "discharges/*") not in objects


def test_writer_function_has_the_pyarrow_layer_and_its_settings(dev: Synthesized) -> None:
    function = only(
        dev[STACK], "AWS::Lambda::Function", {"FunctionName": "readmission-dev-batch-writer"}
    )
    layers = [flatten(layer) for layer in function["Layers"]]
    assert any("layer:AWSSDKPandas-Python312-Arm64:17" in layer for layer in layers)
    variables = function["Environment"]["Variables"]
    assert variables["SOURCE_PREFIX"] == "discharges"
    assert variables["WORKLIST_TABLE"] == "readmission-dev-worklist"
    assert variables["BUDGET_SHARE"] == "0.1"
    assert variables["JOB_NAME_PREFIX"] == "readmission-dev-scoring"
    assert function["Architectures"] == ["arm64"]


def test_serving_role_may_read_the_days_and_write_the_output(dev: Synthesized) -> None:
    """Batch Transform reads and writes S3 as the model's execution role (the serving role)."""
    found = statements(dev["Registry"], "ServingRole")
    by_sid = {s.get("Sid"): s for s in found}
    assert flatten(by_sid["BatchDaysObjects"]["Resource"]).endswith("/discharges/*")
    assert by_sid["BatchDaysObjects"]["Action"] == "s3:GetObject"
    assert flatten(by_sid["BatchOutputObjects"]["Resource"]).endswith("/batch-scoring/output/*")
    assert sorted(as_list(by_sid["BatchOutputObjects"]["Action"])) == [
        "s3:AbortMultipartUpload",
        "s3:PutObject",
    ]
    assert "BatchOutputList" not in by_sid  # write-only


def test_curated_bucket_admits_the_transform_job_and_the_writer(dev: Synthesized) -> None:
    text = str(dev["DataLake"].to_json())
    assert "readmission-dev-batch-writer" in text
    assert "readmission-dev-serving" in text


def test_failures_and_time_outs_alarm_to_the_alert_topic(dev: Synthesized) -> None:
    alarms = dev[STACK].find_resources("AWS::CloudWatch::Alarm")
    by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values()}
    assert set(by_name) == {
        "readmission-dev-batch-scoring-failed",
        "readmission-dev-batch-scoring-timed-out",
    }
    for alarm in by_name.values():
        assert alarm["Threshold"] == 1
        assert alarm["AlarmActions"]
    assert {a["MetricName"] for a in by_name.values()} == {"ExecutionsFailed", "ExecutionsTimedOut"}


def test_scores_table_is_parquet_partitioned_by_projected_day(dev: Synthesized) -> None:
    table = only(dev[STACK], "AWS::Glue::Table")["TableInput"]
    assert table["Name"] == "worklist_scores"
    assert table["PartitionKeys"] == [{"Name": "day", "Type": "string"}]
    assert table["Parameters"]["projection.day.type"] == "date"
    assert table["Parameters"]["projection.day.format"] == "yyyy-MM-dd"
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    assert "day" not in columns
    assert {"probability", "factors", "failure_reason"} <= set(columns)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("instance_type", "ml.m5d.large", "instance storage"),
        ("instance_type", "ml.g4dn.xlarge", "instance storage"),
        ("instance_type", "ml.m5.metal", "does not match"),
        ("source_prefix", "/discharges", "does not match"),
        ("schedule", "every night", "does not match"),
        ("enabled", "yes", "must be bool"),
    ],
)
def test_bad_batch_scoring_config_fails_by_its_path(key: str, value: Any, message: str) -> None:
    context = copy.deepcopy(cdk_context())
    context["stages"]["dev"]["batch_scoring"][key] = value
    with pytest.raises(ConfigError, match=message) as caught:
        load_stage_config(context, "dev")
    assert f"context.stages.dev.batch_scoring.{key}" in str(caught.value)


def test_missing_batch_scoring_section_is_named() -> None:
    context = copy.deepcopy(cdk_context())
    del context["stages"]["prod"]["batch_scoring"]
    with pytest.raises(ConfigError, match=r"context\.stages\.prod\.batch_scoring is missing"):
        load_stage_config(context, "prod")


@pytest.mark.parametrize(
    ("instance_type", "vcpus"),
    [
        ("ml.m5.large", 2),
        ("ml.m5.xlarge", 4),
        ("ml.c5.4xlarge", 16),
        ("ml.t3.medium", 1),
        ("ml.m5.24xlarge", 96),
    ],
)
def test_concurrent_transforms_follow_the_instance_size(instance_type: str, vcpus: int) -> None:
    assert instance_vcpus(instance_type) == vcpus


def test_an_instance_type_of_unknown_size_is_refused() -> None:
    with pytest.raises(ValueError, match="vCPUs"):
        instance_vcpus("ml.m5.metal")


def test_the_worklist_budget_line_is_the_stages_alert_budget() -> None:
    """One budget per stage: the threshold's (training.alert_budget) draws the budget line."""
    context = copy.deepcopy(cdk_context())
    context["stages"]["dev"]["training"]["alert_budget"] = 0.2
    assert load_stage_config(context, "dev").batch_scoring.budget_share == 0.2
