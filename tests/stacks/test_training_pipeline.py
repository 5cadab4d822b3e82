"""The training pipeline: step order, the training job's compute and distribution, triggers."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.components import training_pipeline as tp
from stacks.config import StageConfig
from tests.stacks.conftest import Synthesized, flatten, only, state_machine_definition
from training.metrics import METRIC_DEFINITIONS

#: A successful execution's path through the state machine.
HAPPY_PATH = [
    tp.PREPARE,
    tp.RUN_ETL,
    tp.TRAIN,
    tp.EVALUATE,
    tp.GATE,
    tp.REGISTER,
    tp.NOTIFY_SUCCESS,
    tp.SUCCEEDED,
]


def _walk(definition: dict[str, Any]) -> list[str]:
    """Follow ``Next`` from ``StartAt``, taking the gate's passing branch."""
    states, name, path = definition["States"], definition["StartAt"], []
    while name is not None:
        path.append(name)
        state = states[name]
        name = state["Choices"][0]["Next"] if state["Type"] == "Choice" else state.get("Next")
    return path


@pytest.fixture(scope="module")
def dev_definition(dev: Synthesized) -> dict[str, Any]:
    return state_machine_definition(dev["TrainingPipeline"])


@pytest.fixture(scope="module")
def prod_definition(prod: Synthesized) -> dict[str, Any]:
    return state_machine_definition(prod["TrainingPipeline"])


def test_steps_run_etl_train_evaluate_gate_register_notify_in_order(
    dev_definition: dict[str, Any],
) -> None:
    assert _walk(dev_definition) == HAPPY_PATH
    states = dev_definition["States"]
    assert states[tp.RUN_ETL]["Resource"].endswith(":states:::glue:startJobRun.sync")
    assert states[tp.RUN_ETL]["Parameters"] == {"JobName": "readmission-dev-ehr-features"}
    assert states[tp.TRAIN]["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    assert states[tp.EVALUATE]["Parameters"]["Payload"]["action"] == "evaluate"
    assert states[tp.REGISTER]["Parameters"]["Payload"]["action"] == "register"
    assert states[tp.NOTIFY_SUCCESS]["Resource"].endswith(":states:::sns:publish")
    assert states[tp.SUCCEEDED]["Type"] == "Succeed"


def test_every_work_step_catches_into_the_failure_notice_then_fails(
    dev_definition: dict[str, Any],
) -> None:
    states = dev_definition["States"]
    for name in (tp.RUN_ETL, tp.TRAIN, tp.EVALUATE, tp.REGISTER):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": tp.NOTIFY_FAILURE}
        ], name
    assert states[tp.NOTIFY_FAILURE]["Next"] == tp.FAILED
    assert states[tp.FAILED]["Type"] == "Fail"
    # Only the error name is sent: a cause can quote the data a job was reading.
    message = states[tp.NOTIFY_FAILURE]["Parameters"]["Message"]
    assert message["error.$"] == "$.error.Error"
    assert "$.error.Cause" not in str(message)


def test_a_failed_quality_gate_notifies_and_fails(dev_definition: dict[str, Any]) -> None:
    gate = dev_definition["States"][tp.GATE]
    assert gate["Choices"] == [
        {"Variable": "$.gate.evaluation.passed", "BooleanEquals": True, "Next": tp.REGISTER}
    ]
    assert gate["Default"] == tp.NOTIFY_GATE_FAILED
    assert dev_definition["States"][tp.NOTIFY_GATE_FAILED]["Next"] == tp.GATE_FAILED


def _training(definition: dict[str, Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = definition["States"][tp.TRAIN]["Parameters"]
    return parameters


def test_training_job_runs_torchrun_on_the_stage_compute(
    dev_definition: dict[str, Any],
    prod_definition: dict[str, Any],
    dev_config: StageConfig,
    prod_config: StageConfig,
) -> None:
    for definition, config in ((dev_definition, dev_config), (prod_definition, prod_config)):
        job = _training(definition)
        assert job["ResourceConfig"]["InstanceType"] == "ml.p3.8xlarge"
        assert job["ResourceConfig"]["InstanceCount"] == config.training.instance_count
        hyper = job["HyperParameters"]
        assert hyper["sagemaker_torch_distributed_enabled"] == "true"
        assert hyper["sagemaker_program"] == "training/train.py"
        # The asset key keeps the last suffix only; the toolkit opens it as a gzip'd tar.
        assert flatten(hyper["sagemaker_submit_directory"]).endswith(".gz")
        assert job["Environment"]["PYTHONPATH"] == "/opt/ml/code"
    assert _training(dev_definition)["ResourceConfig"]["InstanceCount"] == 1
    assert _training(prod_definition)["ResourceConfig"]["InstanceCount"] == 4


def test_spot_in_dev_with_wait_time_and_checkpoints_on_demand_in_prod(
    dev_definition: dict[str, Any], prod_definition: dict[str, Any]
) -> None:
    dev_job, prod_job = _training(dev_definition), _training(prod_definition)
    assert dev_job["EnableManagedSpotTraining"] is True
    assert dev_job["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 4 * 3600,
        "MaxWaitTimeInSeconds": 8 * 3600,
    }
    assert prod_job["EnableManagedSpotTraining"] is False
    assert prod_job["StoppingCondition"] == {"MaxRuntimeInSeconds": 8 * 3600}
    checkpoint = dev_job["CheckpointConfig"]
    assert checkpoint["LocalPath"] == "/opt/ml/checkpoints"
    assert checkpoint["S3Uri.$"].endswith("/training/{}/checkpoints/', $.job_name)")


def test_training_job_is_private_encrypted_and_reports_the_metrics(
    dev_definition: dict[str, Any],
) -> None:
    job = _training(dev_definition)
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith(
        "/pytorch-training:2.6.0-gpu-py312"
    )
    assert len(job["VpcConfig"]["Subnets"]) == 2
    assert len(job["VpcConfig"]["SecurityGroupIds"]) == 1
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == job["OutputDataConfig"]["KmsKeyId"]
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == [
        "train",
        "validation",
        "test",
        "protected",
    ]
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].endswith(
        "/features/split=train/"
    )


def test_schedule_and_feature_drift_alarm_start_the_pipeline(
    dev: Synthesized, prod: Synthesized
) -> None:
    pipeline = dev["TrainingPipeline"]
    schedule = only(pipeline, "AWS::Events::Rule", {"ScheduleExpression": "cron(0 3 ? * SUN *)"})
    drift = only(
        pipeline,
        "AWS::Events::Rule",
        {"EventPattern": {"source": ["aws.cloudwatch"]} | _drift_pattern()},
    )
    machine = next(iter(pipeline.find_resources("AWS::StepFunctions::StateMachine")))
    for rule in (schedule, drift):
        assert rule["Targets"][0]["Arn"] == {"Ref": machine}
    only(prod["TrainingPipeline"], "AWS::Events::Rule", {"ScheduleExpression": "cron(0 3 1 * ? *)"})


def _drift_pattern() -> dict[str, Any]:
    return {
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": ["readmission-dev-feature-drift"], "state": {"value": ["ALARM"]}},
    }


def test_state_machine_logs_and_traces(dev: Synthesized) -> None:
    machine = only(dev["TrainingPipeline"], "AWS::StepFunctions::StateMachine")
    assert machine["StateMachineName"] == "readmission-dev-training"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_registrar_gets_the_gate_and_the_serving_image(dev: Synthesized) -> None:
    function = only(
        dev["TrainingPipeline"],
        "AWS::Lambda::Function",
        {"FunctionName": "readmission-dev-registrar"},
    )
    env = function["Environment"]["Variables"]
    assert env["MIN_TEST_AUROC"] == "0.6"
    assert env["MODEL_PACKAGE_GROUP_NAME"] == "readmission-dev-models"
    assert env["ENDPOINT_INSTANCE_TYPE"] == "ml.m5.large"
    assert flatten(env["INFERENCE_IMAGE_URI"]).endswith("/pytorch-inference:2.6.0-cpu-py312")
