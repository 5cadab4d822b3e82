"""The training pipeline: step order (images first), the training job's compute and image,
its distribution, the registrar's serving image, triggers."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.components import training_pipeline as tp
from stacks.config import StageConfig
from tests.stacks.conftest import (
    Synthesized,
    as_list,
    flatten,
    only,
    state_machine_definition,
    statements,
)
from training.metrics import METRIC_DEFINITIONS

#: A successful execution's path through the state machine.
HAPPY_PATH = [
    tp.PREPARE,
    tp.CHECK_TRAINING_IMAGE,
    tp.CHECK_SERVING_IMAGE,
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


def test_steps_check_images_run_etl_train_evaluate_gate_register_notify_in_order(
    dev_definition: dict[str, Any],
) -> None:
    assert _walk(dev_definition) == HAPPY_PATH
    states = dev_definition["States"]
    for check in (tp.CHECK_TRAINING_IMAGE, tp.CHECK_SERVING_IMAGE):
        assert states[check]["Resource"].endswith(":states:::aws-sdk:ecr:describeImages")
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
    for name in (tp.BUILD_IMAGES, tp.RUN_ETL, tp.TRAIN, tp.EVALUATE, tp.REGISTER):
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
        assert job["Environment"] == {
            "PYTHONPATH": "/opt/ml/code",
            "SM_CHECKPOINT_DIR": "/opt/ml/checkpoints",
        }
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


def test_registrar_gets_the_gate_and_the_derived_serving_image(dev: Synthesized) -> None:
    function = only(
        dev["TrainingPipeline"],
        "AWS::Lambda::Function",
        {"FunctionName": "readmission-dev-registrar"},
    )
    env = function["Environment"]["Variables"]
    assert env["MIN_TEST_AUROC"] == "0.6"
    assert env["MODEL_PACKAGE_GROUP_NAME"] == "readmission-dev-models"
    assert env["ENDPOINT_INSTANCE_TYPE"] == "ml.m5.large"
    repository = _logical_id(dev, "readmission-dev-serving")
    assert env["INFERENCE_IMAGE_URI"] == _derived_uri(repository, _tag(dev, "SERVING_IMAGE_TAG"))
    assert _tag(dev, "SERVING_IMAGE_TAG").startswith("2.6.0-cpu-py312-")


def _logical_id(synthesized: Synthesized, repository_name: str) -> str:
    found = synthesized["TrainingPipeline"].find_resources(
        "AWS::ECR::Repository", {"Properties": {"RepositoryName": repository_name}}
    )
    assert len(found) == 1, repository_name
    return next(iter(found))


def _tag(synthesized: Synthesized, variable: str) -> str:
    project = only(synthesized["TrainingPipeline"], "AWS::CodeBuild::Project")
    values = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
    tag: str = values[variable]
    return tag


def _derived_uri(repository: str, tag: str) -> dict[str, Any]:
    """``repository_uri_for_tag`` as CloudFormation renders it for a repository of the stack."""
    arn = {"Fn::GetAtt": [repository, "Arn"]}
    return {
        "Fn::Join": [
            "",
            [
                {"Fn::Select": [4, {"Fn::Split": [":", arn]}]},
                ".dkr.ecr.",
                {"Fn::Select": [3, {"Fn::Split": [":", arn]}]},
                ".",
                {"Ref": "AWS::URLSuffix"},
                "/",
                {"Ref": repository},
                f":{tag}",
            ],
        ]
    }


def test_training_job_runs_the_derived_training_image_of_this_synthesis(
    dev: Synthesized, dev_definition: dict[str, Any]
) -> None:
    tag = _tag(dev, "TRAINING_IMAGE_TAG")
    assert tag.startswith("2.6.0-gpu-py312-")
    image = _training(dev_definition)["AlgorithmSpecification"]["TrainingImage"]
    # The definition is flattened: account, region and suffix are references to the repository.
    assert image == f"<ref>.dkr.ecr.<ref>.<ref>/<ref>:{tag}"
    machine = only(dev["TrainingPipeline"], "AWS::StepFunctions::StateMachine")
    parts = machine["DefinitionString"]["Fn::Join"][1]
    repository = _logical_id(dev, "readmission-dev-training")
    assert {"Ref": repository} in parts
    assert {"Fn::GetAtt": [repository, "Arn"]} in [
        p["Fn::Select"][1]["Fn::Split"][1]
        for p in parts
        if isinstance(p, dict) and "Fn::Select" in p
    ]


def test_a_missing_image_is_built_before_the_etl_and_only_then(
    dev: Synthesized, dev_definition: dict[str, Any]
) -> None:
    states = dev_definition["States"]
    expected = {
        tp.CHECK_TRAINING_IMAGE: ("2.6.0-gpu-py312-", "TRAINING_IMAGE_TAG"),
        tp.CHECK_SERVING_IMAGE: ("2.6.0-cpu-py312-", "SERVING_IMAGE_TAG"),
    }
    for check, (prefix, variable) in expected.items():
        state = states[check]
        assert state["Parameters"]["ImageIds"] == [{"ImageTag": _tag(dev, variable)}]
        assert _tag(dev, variable).startswith(prefix)
        # The specific miss first (to the build, keeping the input), then any other error.
        assert state["Catch"] == [
            {
                "ErrorEquals": ["Ecr.ImageNotFoundException"],
                "ResultPath": "$.image_missing",
                "Next": tp.BUILD_IMAGES,
            },
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": tp.NOTIFY_FAILURE},
        ]
        assert state["ResultPath"] is None
    build = states[tp.BUILD_IMAGES]
    assert build["Resource"].endswith(":states:::codebuild:startBuild.sync")
    assert build["Next"] == tp.RUN_ETL
    assert build["ResultPath"] is None
    # Nothing but the two checks leads to the build: it never runs when both images exist.
    into_build = {
        name
        for name, state in states.items()
        if state.get("Next") == tp.BUILD_IMAGES
        or any(c["Next"] == tp.BUILD_IMAGES for c in state.get("Catch", []))
    }
    assert into_build == {tp.CHECK_TRAINING_IMAGE, tp.CHECK_SERVING_IMAGE}


def test_state_machine_may_check_and_build_only_its_own_images(dev: Synthesized) -> None:
    found = statements(dev["TrainingPipeline"], "PipelineStateMachineRole")
    describe = [s for s in found if s["Action"] == "ecr:DescribeImages"]
    assert sorted(str(r) for s in describe for r in as_list(s["Resource"])) == sorted(
        str({"Fn::GetAtt": [_logical_id(dev, name), "Arn"]})
        for name in ("readmission-dev-training", "readmission-dev-serving")
    )
    builds = [s for s in found if "codebuild:StartBuild" in as_list(s["Action"])]
    assert [s["Resource"] for s in builds] == [
        {"Fn::GetAtt": [next(iter(dev["TrainingPipeline"].find_resources(
            "AWS::CodeBuild::Project"))), "Arn"]}
    ]  # fmt: skip


def test_state_machine_timeout_covers_a_build_the_etl_and_the_longest_training(
    dev: Synthesized, prod: Synthesized
) -> None:
    # dev: 90 min build + 60 min ETL + 2 x 4 h spot + 1 h; prod: 90 + 180 min + 8 h + 1 h.
    for synthesized, hours in ((dev, 1.5 + 1 + 8 + 1), (prod, 1.5 + 3 + 8 + 1)):
        definition = state_machine_definition(synthesized["TrainingPipeline"])
        assert definition["TimeoutSeconds"] == hours * 3600
