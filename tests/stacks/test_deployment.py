"""Deployment: Approved-only and Rejected-only rules, the deployer's settings and rights."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from tests.stacks.conftest import Synthesized, as_list, flatten, only, statements

STATE_CHANGE = "SageMaker Model Package State Change"


def _rules(template: Template) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.find_resources("AWS::Events::Rule").values()]


def _deployer(template: Template) -> dict[str, Any]:
    return only(template, "AWS::Lambda::Function", {"FunctionName": "readmission-dev-deployer"})


def test_one_rule_per_acted_on_status_and_none_for_every_change(dev: Synthesized) -> None:
    deployment = dev["Deployment"]
    patterns = sorted(
        (rule["EventPattern"] for rule in _rules(deployment)),
        key=lambda p: p["detail"]["ModelApprovalStatus"],
    )
    assert patterns == [
        {
            "source": ["aws.sagemaker"],
            "detail-type": [STATE_CHANGE],
            "detail": {
                "ModelPackageGroupName": ["readmission-dev-models"],
                "ModelApprovalStatus": [status],
            },
        }
        for status in ("Approved", "Rejected")
    ]
    function_id = next(
        k
        for k, v in deployment.find_resources("AWS::Lambda::Function").items()
        if v["Properties"].get("FunctionName") == "readmission-dev-deployer"
    )
    for rule in _rules(deployment):
        assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [function_id, "Arn"]}]


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
    for alarm in alarms.values():
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]}["EndpointName"] == (
            "readmission-dev-endpoint"
        )


def test_deployer_runs_one_at_a_time_and_keeps_failed_events(dev: Synthesized) -> None:
    deployer = _deployer(dev["Deployment"])
    assert deployer["ReservedConcurrentExecutions"] == 1
    assert "TargetArn" in deployer["DeadLetterConfig"]


def test_deployer_passes_only_the_execution_role_and_only_to_sagemaker(dev: Synthesized) -> None:
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
