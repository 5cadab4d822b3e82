"""Deployment: Approved-only and Rejected-only rules, the deployer's settings and rights."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import cfnlint
import pytest
from aws_cdk.assertions import Template

from stacks.config import ConfigError, load_stage_config
from tests.stacks.conftest import Synthesized, as_list, cdk_context, flatten, only, statements

STATE_CHANGE = "SageMaker Model Package State Change"


def _rules(template: Template) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.find_resources("AWS::Events::Rule").values()]


def _deployer(template: Template) -> dict[str, Any]:
    return only(template, "AWS::Lambda::Function", {"FunctionName": "readmission-dev-deployer"})


def _queue_id(template: Template, suffix: str) -> str:
    return next(
        k
        for k, v in template.find_resources("AWS::SQS::Queue").items()
        if v["Properties"].get("QueueName") == f"readmission-dev-deployments{suffix}"
    )


def test_every_trigger_reaches_the_deployer_through_one_fifo_group(dev: Synthesized) -> None:
    """Package changes of the group (every status: an un-approval retracts), endpoint changes
    and the sweep go to one FIFO queue in one message group, so reconciliations are ordered and
    never overlap; EventBridge requires content-based deduplication of a FIFO target (Amazon
    EventBridge API reference, SqsParameters)."""
    deployment = dev["Deployment"]
    rules = _rules(deployment)
    patterns = [r.get("EventPattern") for r in rules]
    assert {
        "source": ["aws.sagemaker"],
        "detail-type": [STATE_CHANGE],
        "detail": {"ModelPackageGroupName": ["readmission-dev-models"]},
    } in patterns
    assert {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Endpoint State Change"],
        "detail": {"EndpointName": ["readmission-dev-endpoint"]},
    } in patterns
    assert [r["ScheduleExpression"] for r in rules if "ScheduleExpression" in r] == [
        "rate(15 minutes)"
    ]
    queue_id = _queue_id(deployment, ".fifo")
    for rule in rules:
        [target] = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
        assert target["SqsParameters"] == {"MessageGroupId": "readmission-dev-models"}
    queue = deployment.find_resources("AWS::SQS::Queue")[queue_id]["Properties"]
    assert queue["FifoQueue"] is True
    assert queue["ContentBasedDeduplication"] is True
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 2 * 7200 // 60
    assert "KmsMasterKeyId" in queue
    mapping = only(deployment, "AWS::Lambda::EventSourceMapping")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_only_these_rules_may_send_and_only_to_this_queue(dev: Synthesized) -> None:
    """The queue policy names the three rules by aws:SourceArn; the key lets EventBridge use
    it only for this queue (SQS's encryption context aws:sqs:arn)."""
    deployment = dev["Deployment"]
    rule_ids = sorted(deployment.find_resources("AWS::Events::Rule"))
    policies = deployment.find_resources("AWS::SQS::QueuePolicy")
    allows = [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
    ]
    [allow] = allows
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    sources = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in sources) == rule_ids
    key = only(deployment, "AWS::KMS::Key")
    events_statements = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    [statement] = events_statements
    context = statement["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sqs:arn"]
    assert flatten(context).endswith(":readmission-dev-deployments.fifo")


def test_dead_triggers_alarm_the_on_call(dev: Synthesized) -> None:
    deployment = dev["Deployment"]
    dead_id = _queue_id(deployment, "-dead.fifo")
    alarm = only(
        deployment,
        "AWS::CloudWatch::Alarm",
        {"AlarmName": "readmission-dev-deployer-dead-triggers"},
    )
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]}["QueueName"] == {
        "Fn::GetAtt": [dead_id, "QueueName"]
    }
    assert alarm["AlarmActions"]


def test_deployer_environment_turns_capture_kms_and_rollback_on(
    dev: Synthesized, prod: Synthesized
) -> None:
    env = _deployer(dev["Deployment"])["Environment"]["Variables"]
    assert env["ENDPOINT_NAME"] == "readmission-dev-endpoint"
    assert (env["INSTANCE_TYPE"], env["INSTANCE_COUNT"]) == ("ml.m5.large", "1")
    assert flatten(env["DATA_CAPTURE_S3_URI"]).endswith("/capture")
    assert flatten(env["DATA_CAPTURE_S3_URI"]).startswith("s3://")
    assert env["CAPTURE_SAMPLING_PERCENT"] == "100"
    assert "KMS_KEY_ARN" in env
    assert "EXECUTION_ROLE_ARN" in env
    assert env["MODEL_PACKAGE_GROUP_NAME"] == "readmission-dev-models"
    assert env["ROLLBACK_ALARM_NAMES"] == (
        "readmission-dev-endpoint-latency-p95-rollback,readmission-dev-endpoint-5xx-rollback"
    )
    assert env["REJECTION_ALARM_NAME"] == "readmission-dev-endpoint-rejected-rollout"
    assert "APPROVER_ROLE_ARN" in env
    assert "QUEUE_URL" in env
    assert flatten(env["VPC_SUBNET_IDS"]).count(",") == 1
    prod_env = only(
        prod["Deployment"], "AWS::Lambda::Function", {"FunctionName": "readmission-prod-deployer"}
    )["Environment"]["Variables"]
    assert (prod_env["INSTANCE_TYPE"], prod_env["INSTANCE_COUNT"]) == ("ml.m5.xlarge", "2")


def test_rollback_alarms_watch_the_endpoint_by_the_names_the_deployer_gets(
    dev: Synthesized,
) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in dev["Deployment"].find_resources("AWS::CloudWatch::Alarm").values()
    }
    latency = alarms["readmission-dev-endpoint-latency-p95-rollback"]
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Threshold"]) == (
        "ModelLatency",
        "p95",
        200_000,
    )
    errors = alarms["readmission-dev-endpoint-5xx-rollback"]
    assert (errors["MetricName"], errors["Statistic"], errors["Threshold"]) == (
        "Invocation5XXErrors",
        "Sum",
        5,
    )
    rejected = alarms["readmission-dev-endpoint-rejected-rollout"]
    assert (rejected["Namespace"], rejected["MetricName"], rejected["Threshold"]) == (
        "ReadmissionPlatform/Deployments",
        "RejectedVersionInFlight",
        1,
    )
    for name in (
        "readmission-dev-endpoint-latency-p95-rollback",
        "readmission-dev-endpoint-5xx-rollback",
        "readmission-dev-endpoint-rejected-rollout",
    ):
        assert {d["Name"]: d["Value"] for d in alarms[name]["Dimensions"]}["EndpointName"] == (
            "readmission-dev-endpoint"
        )


def test_deployer_runs_one_at_a_time(dev: Synthesized) -> None:
    deployer = _deployer(dev["Deployment"])
    assert deployer["ReservedConcurrentExecutions"] == 1
    # Triggers are kept by the FIFO queue (and its dead-letter queue), not by async retries.
    assert "DeadLetterConfig" not in deployer


def test_the_deployer_trips_the_rejection_alarm_but_reads_no_rollback_alarm(
    dev: Synthesized,
) -> None:
    """SageMaker reads the rollback alarms with the endpoint's execution role
    (deployment-guardrails-configuration); the deployer only sets the rejection alarm."""
    found = statements(dev["Deployment"], "DeployerRole")
    actions = {a for s in found for a in as_list(s["Action"])}
    assert "cloudwatch:DescribeAlarms" not in actions
    [trip] = [s for s in found if "cloudwatch:SetAlarmState" in as_list(s["Action"])]
    assert flatten(trip["Resource"]).endswith(":alarm:readmission-dev-endpoint-rejected-rollout")
    [metrics] = [s for s in found if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "ReadmissionPlatform/Deployments"}
    }
    for statement in found:
        if "kms:GrantIsForAWSResource" in str(statement.get("Condition")):
            assert as_list(statement["Action"]) == ["kms:CreateGrant"]


def test_deployer_passes_only_the_serving_role_and_only_to_sagemaker(dev: Synthesized) -> None:
    found = statements(dev["Deployment"], "DeployerRole")
    passes = [s for s in found if s["Action"] == "iam:PassRole"]
    assert len(passes) == 1
    assert passes[0]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert "Fn::ImportValue" in passes[0]["Resource"]
    manage = next(s for s in found if s.get("Sid") == "ManageTheEndpointsModelsAndConfigs")
    assert sorted(flatten(r).split(":", 5)[-1] for r in manage["Resource"]) == [
        "endpoint-config/readmission-dev-endpoint-*",
        "endpoint/readmission-dev-endpoint",
        "model/readmission-dev-endpoint-*",
    ]
    for statement in found:
        assert not any(a.endswith(":*") for a in as_list(statement["Action"]))


def _env(synthesized: Synthesized, stage: str) -> dict[str, Any]:
    function = only(
        synthesized["Deployment"],
        "AWS::Lambda::Function",
        {"FunctionName": f"readmission-{stage}-deployer"},
    )
    return dict(function["Environment"]["Variables"])


def test_the_shadow_stage_and_autoscaling_follow_the_stage_config(
    dev: Synthesized, prod: Synthesized
) -> None:
    """Dev skips the shadow stage; prod runs it with its bounds. Both scale on invocations."""
    dev_env, prod_env = _env(dev, "dev"), _env(prod, "prod")
    assert dev_env["SHADOW_ENABLED"] == "false"
    assert prod_env["SHADOW_ENABLED"] == "true"
    assert (prod_env["SHADOW_TRAFFIC_PERCENT"], prod_env["SHADOW_MINIMUM_MINUTES"]) == (
        "50",
        "1440",
    )
    assert prod_env["SHADOW_MINIMUM_PAIRS"] == "2000"
    for name in (
        "SHADOW_MIN_PEARSON",
        "SHADOW_MIN_SPEARMAN",
        "SHADOW_MIN_BAND_AGREEMENT",
        "SHADOW_MAX_ALERT_RATE_DIFFERENCE",
        "SHADOW_MAX_LATENCY_P95_RATIO",
        "SHADOW_MAX_ERROR_RATE",
    ):
        float(prod_env[name])
    assert prod_env["AUTOSCALING_ENABLED"] == "true"
    assert (prod_env["AUTOSCALING_MIN_INSTANCES"], prod_env["AUTOSCALING_MAX_INSTANCES"]) == (
        "2",
        "8",
    )
    assert prod_env["AUTOSCALING_TARGET_INVOCATIONS_PER_INSTANCE"] == "3900"


def test_the_deployer_may_scale_only_through_application_auto_scaling_as_documented(
    dev: Synthesized,
) -> None:
    """Auto scaling prerequisites
    (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html):
    the Application Auto Scaling actions, and iam:CreateServiceLinkedRole for the SageMaker
    endpoint service-linked role only, with the iam:AWSServiceName condition."""
    found = statements(dev["Deployment"], "DeployerRole")
    [scale] = [s for s in found if s.get("Sid") == "ScaleTheEndpointVariant"]
    assert sorted(as_list(scale["Action"])) == [
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:RegisterScalableTarget",
    ]
    assert flatten(scale["Resource"]).endswith(":scalable-target/*")
    assert ":application-autoscaling:" in flatten(scale["Resource"])
    [linked] = [s for s in found if "iam:CreateServiceLinkedRole" in as_list(s["Action"])]
    assert flatten(linked["Resource"]).endswith(
        ":role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    )
    assert linked["Condition"] == {
        "StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
    }
    [capture] = [s for s in found if s.get("Sid") == "ReadShadowCaptureObjects"]
    assert flatten(capture["Resource"]).endswith("/capture/readmission-dev-endpoint/*")
    assert not {"s3:PutObject", "s3:DeleteObject"} & set(as_list(capture["Action"]))


def test_every_deployer_action_exists_with_the_resources_it_is_granted_on(
    dev: Synthesized,
) -> None:
    """Each action is one the Service Authorization Reference lists (cfn-lint's copy); an action
    with no resource type is granted on "*" only."""
    policies = json.loads(
        (Path(cfnlint.__file__).parent / "data/AdditionalSpecs/Policies.json").read_text()
    )
    for statement in statements(dev["Deployment"], "DeployerRole"):
        for action in as_list(statement["Action"]):
            service, _, name = action.partition(":")
            known = {a.lower(): spec for a, spec in policies[service]["Actions"].items()}
            if name.endswith("*"):
                assert any(a.startswith(name[:-1].lower()) for a in known), action
                continue
            assert name.lower() in known, action
            if not known[name.lower()].get("Resources"):
                assert as_list(statement["Resource"]) == ["*"], action


def test_a_held_candidate_and_sustained_max_capacity_alarm_the_on_call(
    dev: Synthesized,
) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in dev["Deployment"].find_resources("AWS::CloudWatch::Alarm").values()
    }
    held = alarms["readmission-dev-shadow-candidate-held"]
    assert (held["Namespace"], held["MetricName"]) == (
        "ReadmissionPlatform/Deployments",
        "ShadowCandidateHeld",
    )
    at_max = alarms["readmission-dev-endpoint-sustained-max-capacity"]
    assert at_max["MetricName"] == "EndpointAtMaxCapacity"
    # 45 minutes of 15-minute sweeps: three in a row at the maximum.
    assert (at_max["Period"], at_max["EvaluationPeriods"], at_max["DatapointsToAlarm"]) == (
        900,
        3,
        3,
    )
    for alarm in (held, at_max):
        assert alarm["AlarmActions"]
        dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dims == {"EndpointName": "readmission-dev-endpoint"}


def test_the_health_dashboard_shows_shadow_decisions_and_capacity(dev: Synthesized) -> None:
    dashboard = only(dev["Monitoring"], "AWS::CloudWatch::Dashboard")
    body = flatten(dashboard["DashboardBody"])
    for metric in (
        "ShadowCandidateHeld",
        "ShadowScorePearson",
        "ShadowRiskBandAgreement",
        "ShadowAlertRateDifference",
        "EndpointAtMaxCapacity",
    ):
        assert f'"{metric}"' in body, metric


def test_rollout_config_errors_name_the_key() -> None:
    context = cdk_context()
    missing = copy.deepcopy(context)
    del missing["stages"]["dev"]["rollout"]
    with pytest.raises(ConfigError, match=r"context\.stages\.dev\.rollout is missing"):
        load_stage_config(missing, "dev")
    inverted = copy.deepcopy(context)
    inverted["stages"]["dev"]["rollout"]["autoscaling"].update(min_instances=4, max_instances=2)
    with pytest.raises(ConfigError, match=r"rollout\.autoscaling\.max_instances"):
        load_stage_config(inverted, "dev")
    bad_bound = copy.deepcopy(context)
    bad_bound["stages"]["prod"]["rollout"]["shadow"]["bounds"]["max_error_rate"] = 2
    with pytest.raises(ConfigError, match=r"shadow\.bounds\.max_error_rate"):
        load_stage_config(bad_bound, "prod")
