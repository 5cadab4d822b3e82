"""Monitoring: the encrypted alert topic, the drift schedule, every alarm, the dashboard."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from contracts.drift import drift_fields
from contracts.fairness import ATTRIBUTES, GAP_METRICS
from stacks.config import ConfigError, StageConfig, load_stage_config
from stacks.naming import LAMBDA_FUNCTIONS
from tests.stacks.cdk_helpers import cdk_context
from tests.stacks.conftest import Synthesized, flatten, only


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    """Alarm properties by alarm name."""
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


def _topic_ref(template: Template) -> dict[str, str]:
    return {"Ref": next(iter(template.find_resources("AWS::SNS::Topic")))}


def test_topic_is_kms_encrypted_tls_only_and_mails_the_stage_address(
    dev: Synthesized, prod: Synthesized
) -> None:
    monitoring = dev["Monitoring"]
    topic = only(monitoring, "AWS::SNS::Topic")
    assert topic["TopicName"] == "readmission-dev-alerts"
    assert "KmsMasterKeyId" in topic
    policy = only(monitoring, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy
    )
    monitoring.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "ml-platform-dev@example.org"},
    )
    prod["Monitoring"].has_resource_properties(
        "AWS::SNS::Subscription", {"Endpoint": "ml-platform-oncall@example.org"}
    )


def test_alert_key_lets_only_the_stages_alarms_publish(dev: Synthesized) -> None:
    """CloudWatch alarms of this stage only, to this topic only (aws:SourceArn and the
    aws:sns:topicArn encryption context); EventBridge has no statement: its rule publishes
    with a role, because KMS sees no aws:SourceArn for EventBridge deliveries.
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
    """
    keys = dev["Monitoring"].find_resources("AWS::KMS::Key")
    assert len(keys) == 1
    statements = next(iter(keys.values()))["Properties"]["KeyPolicy"]["Statement"]
    by_service = {
        flatten(s["Principal"]["Service"]): s
        for s in statements
        if "Service" in s.get("Principal", {})
    }
    assert set(by_service) == {"logs.<ref>.amazonaws.com", "cloudwatch.amazonaws.com"}
    alarms = by_service["cloudwatch.amazonaws.com"]["Condition"]
    assert flatten(alarms["ArnLike"]["aws:SourceArn"]) == (
        "arn:<ref>:cloudwatch:<ref>:<ref>:alarm:readmission-dev-*"
    )
    assert flatten(alarms["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]) == (
        "arn:<ref>:sns:<ref>:<ref>:readmission-dev-alerts"
    )


def test_topic_accepts_alarms_of_this_stage_and_the_glue_rule_publishes_with_a_role(
    dev: Synthesized,
) -> None:
    monitoring = dev["Monitoring"]
    policy = only(monitoring, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    services = [s for s in policy if "Service" in s.get("Principal", {})]
    assert [s["Principal"]["Service"] for s in services] == ["cloudwatch.amazonaws.com"]
    assert flatten(services[0]["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(
        ":alarm:readmission-dev-*"
    )
    rule = only(
        monitoring,
        "AWS::Events::Rule",
        {"EventPattern": Match.object_like({"source": ["aws.glue"]})},
    )
    assert "RoleArn" in rule["Targets"][0]


def test_drift_monitor_runs_hourly_on_the_endpoint_capture(
    dev: Synthesized, dev_config: StageConfig
) -> None:
    monitoring = dev["Monitoring"]
    function = only(
        monitoring, "AWS::Lambda::Function", {"FunctionName": "readmission-dev-drift-monitor"}
    )
    env = function["Environment"]["Variables"]
    assert env["ENDPOINT_NAME"] == "readmission-dev-endpoint"
    assert env["CAPTURE_PREFIX"] == "capture"
    assert env["METRIC_NAMESPACE"] == "ReadmissionPlatform/Drift"
    assert env["PSI_THRESHOLD"] == str(dev_config.alarms.feature_psi)
    assert function["Handler"] == "lambdas.drift_monitor.app.lambda_handler"
    assert "DeadLetterConfig" in function
    monitoring.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(1 hour)", "State": "ENABLED"}
    )


@pytest.mark.parametrize(
    ("name", "namespace", "metric", "statistic", "threshold", "operator"),
    [
        (
            "feature-drift",
            "ReadmissionPlatform/Drift",
            "MaxFeaturePSI",
            "Maximum",
            0.2,
            "GreaterThanThreshold",
        ),
        (
            "prediction-drift",
            "ReadmissionPlatform/Drift",
            "PredictionPSI",
            "Maximum",
            0.1,
            "GreaterThanThreshold",
        ),
        (
            "endpoint-latency-p95",
            "AWS/SageMaker",
            "ModelLatency",
            "p95",
            200_000,
            "GreaterThanThreshold",
        ),
        (
            "endpoint-5xx",
            "AWS/SageMaker",
            "Invocation5XXErrors",
            "Sum",
            5,
            "GreaterThanOrEqualToThreshold",
        ),
        (
            "endpoint-4xx",
            "AWS/SageMaker",
            "Invocation4XXErrors",
            "Sum",
            50,
            "GreaterThanOrEqualToThreshold",
        ),
        (
            "training-pipeline-failed",
            "AWS/States",
            "ExecutionsFailed",
            "Sum",
            1,
            "GreaterThanOrEqualToThreshold",
        ),
    ],
)
def test_each_alarm_watches_its_metric_with_the_stage_threshold_and_pages(
    dev: Synthesized,
    name: str,
    namespace: str,
    metric: str,
    statistic: str,
    threshold: float,
    operator: str,
) -> None:
    monitoring = dev["Monitoring"]
    alarm = _alarms(monitoring)[f"readmission-dev-{name}"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (
        namespace,
        metric,
        threshold,
    )
    assert alarm.get("Statistic", alarm.get("ExtendedStatistic")) == statistic
    assert alarm["ComparisonOperator"] == operator
    assert alarm["AlarmActions"] == [_topic_ref(monitoring)]
    assert alarm["TreatMissingData"] == "notBreaching"


def test_endpoint_and_drift_alarms_watch_the_deployed_endpoint(dev: Synthesized) -> None:
    alarms = _alarms(dev["Monitoring"])
    latency = alarms["readmission-dev-endpoint-latency-p95"]
    assert {d["Name"]: d["Value"] for d in latency["Dimensions"]} == {
        "EndpointName": "readmission-dev-endpoint",
        "VariantName": "AllTraffic",
    }
    drift = alarms["readmission-dev-feature-drift"]
    assert drift["Dimensions"] == [{"Name": "EndpointName", "Value": "readmission-dev-endpoint"}]
    failed = alarms["readmission-dev-training-pipeline-failed"]
    assert flatten(failed["Dimensions"][0]["Value"]).endswith(
        ":stateMachine:readmission-dev-training"
    )


def test_prod_pages_on_tighter_latency_and_error_thresholds(prod: Synthesized) -> None:
    alarms = _alarms(prod["Monitoring"])
    assert alarms["readmission-prod-endpoint-latency-p95"]["Threshold"] == 150_000
    assert alarms["readmission-prod-endpoint-5xx"]["Threshold"] == 1
    assert alarms["readmission-prod-predict-errors"]["Threshold"] == 1


def test_every_function_has_error_and_throttle_alarms(dev: Synthesized) -> None:
    alarms = _alarms(dev["Monitoring"])
    for suffix in LAMBDA_FUNCTIONS.values():
        errors = alarms[f"readmission-dev-{suffix}-errors"]
        throttles = alarms[f"readmission-dev-{suffix}-throttles"]
        assert (errors["MetricName"], errors["Threshold"]) == ("Errors", 5)
        assert (throttles["MetricName"], throttles["Threshold"]) == ("Throttles", 1)
        assert errors["Dimensions"] == [
            {"Name": "FunctionName", "Value": f"readmission-dev-{suffix}"}
        ]


def test_glue_failures_go_to_the_topic(dev: Synthesized) -> None:
    monitoring = dev["Monitoring"]
    rule = only(
        monitoring,
        "AWS::Events::Rule",
        {"EventPattern": Match.object_like({"source": ["aws.glue"]})},
    )
    assert rule["EventPattern"] == {
        "source": ["aws.glue"],
        "detail-type": ["Glue Job State Change"],
        "detail": {
            "jobName": ["readmission-dev-ehr-features"],
            "state": ["FAILED", "TIMEOUT", "ERROR"],
        },
    }
    assert rule["Targets"][0]["Arn"] == _topic_ref(monitoring)


def test_dashboard_shows_psi_of_every_drift_feature(dev: Synthesized) -> None:
    dashboard = only(dev["Monitoring"], "AWS::CloudWatch::Dashboard")
    assert dashboard["DashboardName"] == "readmission-dev-model-health"
    body = json.loads(flatten(dashboard["DashboardBody"]))
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Invocations",
        "Model latency (microseconds)",
        "Endpoint errors",
        "Prediction PSI",
        "Feature PSI",
        "Realised quality (labels 31 days later)",
        "Shadow candidate vs serving (per decision)",
        "Endpoint at maximum instance count",
        "Fairness gap: auroc (max - min across groups)",
        "Fairness gap: calibration_in_the_large (max - min across groups)",
        "Fairness gap: alert_rate (max - min across groups)",
        "Subgroup AUROC",
        "Subgroup alert rate",
    ]
    feature_widget = body["widgets"][titles.index("Feature PSI")]
    features = {m[-1]["label"] for m in feature_widget["properties"]["metrics"]}
    assert features == {spec.name for spec in drift_fields()}


def test_fairness_runs_daily_with_the_stage_bounds_and_minimums(
    dev: Synthesized, dev_config: StageConfig
) -> None:
    monitoring = dev["Monitoring"]
    functions = monitoring.find_resources(
        "AWS::Lambda::Function",
        {"Properties": Match.object_like({"FunctionName": "readmission-dev-drift-monitor"})},
    )
    (logical_id, function) = next(iter(functions.items()))
    env = function["Properties"]["Environment"]["Variables"]
    fairness = dev_config.fairness
    assert env["FAIRNESS_WINDOW_DAYS"] == str(fairness.window_days)
    assert env["FAIRNESS_AUROC_GAP"] == str(fairness.auroc_gap)
    assert env["FAIRNESS_MIN_PATIENTS"] == str(fairness.min_patients)
    assert env["FAIRNESS_MIN_OUTCOMES"] == str(fairness.min_outcomes)
    assert env["GROUND_TRUTH_PREFIX"] == "ground-truth"
    rule = only(monitoring, "AWS::Events::Rule", {"ScheduleExpression": "cron(0 6 * * ? *)"})
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [logical_id, "Arn"]}
    assert json.loads(target["Input"]) == {"check": "fairness"}


def test_one_fairness_alarm_per_attribute_and_metric_pages_on_its_bound(
    dev: Synthesized, dev_config: StageConfig
) -> None:
    """A one-day period holds the one daily gap; a missing gap (too few patients in a group)
    is not a breach."""
    monitoring = dev["Monitoring"]
    alarms = _alarms(monitoring)
    bounds = {
        "auroc": dev_config.fairness.auroc_gap,
        "calibration_in_the_large": dev_config.fairness.calibration_gap,
        "alert_rate": dev_config.fairness.alert_rate_gap,
    }
    fairness = {name: a for name, a in alarms.items() if "-fairness-" in name}
    assert len(fairness) == len(ATTRIBUTES) * len(GAP_METRICS) == 9
    for attribute in ATTRIBUTES:
        for metric in GAP_METRICS:
            name = f"readmission-dev-fairness-{attribute}-{metric}".replace("_", "-")
            alarm = fairness[name]
            assert alarm["Namespace"] == "ReadmissionPlatform/Drift"
            assert alarm["MetricName"] == "FairnessGap"
            assert alarm["Dimensions"] == [
                {"Name": "Attribute", "Value": attribute},
                {"Name": "EndpointName", "Value": "readmission-dev-endpoint"},
                {"Name": "Metric", "Value": metric},
            ]
            assert alarm["Threshold"] == bounds[metric]
            assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
            assert (alarm["Period"], alarm["EvaluationPeriods"]) == (86_400, 1)
            assert alarm["Statistic"] == "Maximum"
            assert alarm["TreatMissingData"] == "notBreaching"
            assert alarm["AlarmActions"] == [_topic_ref(monitoring)]
            assert "docs/operations.md" in alarm["AlarmDescription"]


def test_dashboard_draws_each_fairness_gap_against_its_bound(
    dev: Synthesized, dev_config: StageConfig
) -> None:
    dashboard = only(dev["Monitoring"], "AWS::CloudWatch::Dashboard")
    body = json.loads(flatten(dashboard["DashboardBody"]))
    by_title = {w["properties"]["title"]: w["properties"] for w in body["widgets"]}
    auroc = by_title["Fairness gap: auroc (max - min across groups)"]
    assert auroc["annotations"]["horizontal"][0]["value"] == dev_config.fairness.auroc_gap
    assert {m[-1]["label"] for m in auroc["metrics"]} == {
        f"{attribute} auroc" for attribute in ATTRIBUTES
    }
    groups = {m[-1]["label"] for m in by_title["Subgroup AUROC"]["metrics"]}
    assert {"sex=F", "sex=M", "age_band=80+", "race=black"} <= groups
    assert not any(label.endswith("=unknown") for label in groups)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("min_outcomes", 40, "min_outcomes=40 is below 72"),
        ("min_patients", 150, "min_patients=150 is below 301"),
        ("auroc_gap", 0.9, "auroc_gap=0.9 is outside"),
        ("window_days", 1, "window_days=1 is outside"),
    ],
)
def test_fairness_minimums_too_small_for_the_bounds_fail_by_path(
    key: str, value: float, message: str
) -> None:
    context = copy.deepcopy(cdk_context())
    context["stages"]["prod"]["fairness"][key] = value
    with pytest.raises(ConfigError, match=f"context.stages.prod.fairness.{message}"):
        load_stage_config(context, "prod")
