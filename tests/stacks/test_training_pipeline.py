"""The training pipeline: step order (images first), the training job's compute and image,
its distribution, the registrar's serving image, triggers."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import Stack, Token

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
    assert job["EnableNetworkIsolation"] is True
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == [
        "train",
        "validation",
        "test",
        "protected",
        "code",
    ]
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].endswith(
        "/features/split=train/"
    )


def test_isolated_job_gets_its_source_as_a_channel_and_unpacks_that_copy(
    dev: Synthesized, prod_definition: dict[str, Any]
) -> None:
    """An isolated container cannot download ``sagemaker_submit_directory`` from S3: the
    archive (the stack's asset) comes in as the ``code`` channel and the toolkit is pointed at
    the channel's copy, named as the object's key."""
    machine = only(dev["TrainingPipeline"], "AWS::StepFunctions::StateMachine")
    text = "".join(
        p if isinstance(p, str) else json.dumps(p)
        for p in machine["DefinitionString"]["Fn::Join"][1]
    )
    for job in (
        _training(state_machine_definition(dev["TrainingPipeline"])),
        _training(prod_definition),
    ):
        assert job["EnableNetworkIsolation"] is True
        [code] = [c for c in job["InputDataConfig"] if c["ChannelName"] == "code"]
        assert code["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
        submit = job["HyperParameters"]["sagemaker_submit_directory"]
        directory, _, archive = submit.rpartition("/")
        assert directory == "/opt/ml/input/data/code"
        assert archive.endswith(".gz")
    # The channel's S3 URI ends with exactly that file name.
    assert re.search(rf"/{re.escape(archive)}\"\}}", text), archive


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


# --- The state machine role against the Step Functions documentation -----------------------

#: Pseudo parameters as a deployment resolves them (the account and region come from the stack).
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"


@dataclass(frozen=True)
class Context:
    """How the pipeline stack's references read as text."""

    region: str
    account: str

    def text(self, node: Any) -> str:
        """A CloudFormation value as text: pseudo parameters resolved, other references as
        ``{Ref X}``, ``{X.Attr}`` or ``{import NAME}``."""
        if isinstance(node, str):
            return node
        if not isinstance(node, dict) or len(node) != 1:
            raise AssertionError(f"unexpected value {node!r}")
        ((function, argument),) = node.items()
        if function == "Ref":
            pseudo = {
                "AWS::Partition": PARTITION,
                "AWS::Region": self.region,
                "AWS::AccountId": self.account,
                "AWS::URLSuffix": URL_SUFFIX,
            }
            return pseudo.get(argument, f"{{Ref {argument}}}")
        if function == "Fn::GetAtt":
            return f"{{{argument[0]}.{argument[1]}}}"
        if function == "Fn::ImportValue":
            return f"{{import {argument}}}"
        if function == "Fn::Join":
            delimiter, parts = argument
            return str(delimiter).join(self.text(part) for part in parts)
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: self.text({"Ref": m.group(1)}), argument)
        if function in ("Fn::Select", "Fn::Split"):
            return "{derived}"
        raise AssertionError(f"unexpected function {function}")

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{PARTITION}:{service}:{self.region}:{self.account}:{resource}"


def _context(synthesized: Synthesized) -> Context:
    [stack] = [
        child
        for child in synthesized.app.node.children
        if isinstance(child, Stack) and child.stack_name.endswith("-TrainingPipeline")
    ]

    def concrete(value: str, placeholder: str) -> str:
        return placeholder if Token.is_unresolved(value) else value

    return Context(concrete(stack.region, "REGION"), concrete(stack.account, "123456789012"))


@dataclass(frozen=True)
class Need:
    """Actions a service integration calls, the resource it calls them on, and the condition
    the documented policy puts on them."""

    actions: tuple[str, ...]
    resource: str
    condition: dict[str, Any] | None = None


def _project_arn(reference: str) -> str:
    """``{Ref Project}`` (a CodeBuild project's or ECR repository's name) -> ``{Project.Arn}``."""
    match = re.fullmatch(r"\{Ref (\w+)\}", reference)
    assert match, reference
    return f"{{{match.group(1)}.Arn}}"


def _training_job(parameters: dict[str, Any], context: Context, job: str) -> list[Need]:
    # https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html
    # (CreateTrainingJob, static resources, Run a Job (.sync))
    return [
        Need(
            ("sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
             "sagemaker:StopTrainingJob"),
            context.arn("sagemaker", f"training-job/{job}"),
        ),
        Need(("sagemaker:ListTags",), "*"),
        Need(
            ("iam:PassRole",),
            parameters["RoleArn"],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        Need(
            ("events:PutTargets", "events:PutRule", "events:DescribeRule"),
            context.arn("events", "rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"),
        ),
    ]  # fmt: skip


def _glue_job(parameters: dict[str, Any], context: Context, job: str) -> list[Need]:
    # https://docs.aws.amazon.com/step-functions/latest/dg/connect-glue.html#glue-iam (Run a
    # Job (.sync)). The page grants them on "*"; the Service Authorization Reference gives
    # each the job resource type, so the job's ARN is what must be covered.
    return [
        Need(
            ("glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"),
            context.arn("glue", f"job/{parameters['JobName']}"),
        )
    ]


def _codebuild(parameters: dict[str, Any], context: Context, job: str) -> list[Need]:
    # https://docs.aws.amazon.com/step-functions/latest/dg/codebuild-iam.html (StartBuild,
    # static resources, Run a Job (.sync))
    return [
        Need(
            ("codebuild:StartBuild", "codebuild:StopBuild", "codebuild:BatchGetBuilds"),
            _project_arn(parameters["ProjectName"]),
        ),
        Need(
            ("events:PutTargets", "events:PutRule", "events:DescribeRule"),
            context.arn("events", "rule/StepFunctionsGetEventForCodeBuildStartBuildRule"),
        ),
    ]


def _lambda(parameters: dict[str, Any], context: Context, job: str) -> list[Need]:
    # https://docs.aws.amazon.com/step-functions/latest/dg/lambda-iam.html
    return [Need(("lambda:InvokeFunction",), parameters["FunctionName"])]


def _sns(parameters: dict[str, Any], context: Context, job: str) -> list[Need]:
    # https://docs.aws.amazon.com/step-functions/latest/dg/sns-iam.html
    return [Need(("sns:Publish",), parameters["TopicArn"])]


def _ecr_describe_images(parameters: dict[str, Any], context: Context, job: str) -> list[Need]:
    # An AWS SDK integration calls the API with the IAM action of the same name
    # (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html).
    return [Need(("ecr:DescribeImages",), _project_arn(parameters["RepositoryName"]))]


#: Service integration (the Task's Resource after ``arn:aws:states:::``) -> what it needs.
INTEGRATIONS: dict[str, Callable[[dict[str, Any], Context, str], list[Need]]] = {
    "sagemaker:createTrainingJob.sync": _training_job,
    "glue:startJobRun.sync": _glue_job,
    "codebuild:startBuild.sync": _codebuild,
    "lambda:invoke": _lambda,
    "sns:publish": _sns,
    "aws-sdk:ecr:describeImages": _ecr_describe_images,
}

#: What the role may hold beyond the integrations: logging to CloudWatch Logs
#: (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html), X-Ray tracing
#: (https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html), publishing to the
#: KMS-encrypted alert topic (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html)
#: and the build reports the CodeBuild page's first example also grants.
ALSO_DOCUMENTED = {
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "kms:Decrypt", "kms:GenerateDataKey*",
    "codebuild:BatchGetReports",
}  # fmt: skip


def _iam_match(pattern: str, text: str) -> bool:
    """IAM's wildcard match: ``*`` and ``?``, everything else literal (case-sensitive)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text) is not None


def _task_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from _task_states(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _task_states(state[key]["States"])


def _needs(synthesized: Synthesized) -> tuple[Context, list[tuple[str, Need]]]:
    template = synthesized["TrainingPipeline"]
    context = _context(synthesized)
    machine = only(template, "AWS::StepFunctions::StateMachine")
    definition = json.loads(context.text(machine["DefinitionString"]))
    job_name = definition["States"][tp.PREPARE]["Parameters"]["job_name.$"]
    prefix = re.fullmatch(r"States\.Format\('(.+)\{\}', States\.UUID\(\)\)", job_name)
    assert prefix, job_name
    job = f"{prefix.group(1)}{uuid.uuid4()}"
    needs = []
    for name, state in _task_states(definition["States"]):
        integration = state["Resource"].removeprefix(f"arn:{PARTITION}:states:::")
        assert integration in INTEGRATIONS, f"{name}: no documented policy for {integration}"
        needs += [(name, n) for n in INTEGRATIONS[integration](state["Parameters"], context, job)]
    return context, needs


def _grants(statement: dict[str, Any], context: Context, action: str, need: Need) -> bool:
    conditions = statement.get("Condition", {})
    return (
        statement["Effect"] == "Allow"
        and any(_iam_match(a, action) for a in as_list(statement["Action"]))
        and any(_iam_match(context.text(r), need.resource) for r in as_list(statement["Resource"]))
        and all(
            conditions.get(operator, {}).get(key) == value
            for operator, keys in (need.condition or {}).items()
            for key, value in keys.items()
        )
    )


def test_state_machine_role_holds_what_each_integration_needs_per_the_step_functions_docs(
    dev: Synthesized, prod: Synthesized
) -> None:
    """Every Task state's integration, looked up in the Step Functions developer guide's IAM
    policy for it: each action granted on the resource the state calls it on (the training
    job's ``sagemaker:ListTags`` on ``*`` and the managed EventBridge rules included)."""
    for synthesized in (dev, prod):
        context, needs = _needs(synthesized)
        found = statements(synthesized["TrainingPipeline"], "PipelineStateMachineRole")
        missing = [
            f"{state}: {action} on {need.resource}"
            for state, need in needs
            for action in need.actions
            if not any(_grants(s, context, action, need) for s in found)
        ]
        assert not missing, missing


def test_state_machine_role_holds_nothing_beyond_what_the_docs_name(dev: Synthesized) -> None:
    """No action beyond the integrations' documented policies, logging, tracing and the
    encrypted topic (``sagemaker:AddTags`` is not among them: the request sets no Tags)."""
    _, needs = _needs(dev)
    documented = {action for _, need in needs for action in need.actions} | ALSO_DOCUMENTED
    found = statements(dev["TrainingPipeline"], "PipelineStateMachineRole")
    granted = {a for s in found if s["Effect"] == "Allow" for a in as_list(s["Action"])}
    assert granted <= documented, granted - documented
    assert "sagemaker:AddTags" not in granted


# --- "*" only where the Service Authorization Reference has no resource type ---------------

#: Actions granted on "*" although the Service Authorization Reference gives them a resource
#: type, each with the documentation that grants them so.
STAR_BY_DOCUMENTATION = {
    "sagemaker:ListTags": "https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html",
}


def _resource_types() -> dict[str, dict[str, Any]]:
    """The Service Authorization Reference as cfn-lint ships it: service -> action -> types."""
    from cfnlint.data import AdditionalSpecs
    from cfnlint.helpers import load_resource

    policies: dict[str, dict[str, Any]] = load_resource(AdditionalSpecs, "Policies.json")
    return policies


def _star_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    """The statements of this unit's own grants: the state machine's role, the registrar's
    SageMaker statements and the ETL job's network policy."""
    pipeline = synthesized["TrainingPipeline"]
    found = statements(pipeline, "PipelineStateMachineRole")
    found += [
        s
        for s in statements(pipeline, "PipelineRegistrarRole")
        if all(a.startswith("sagemaker:") for a in as_list(s["Action"]))
    ]
    for logical_id, policy in synthesized["Etl"].find_resources("AWS::IAM::Policy").items():
        if logical_id.startswith("EtlNetworkPolicy"):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_star_is_granted_only_to_actions_without_a_resource_type(dev: Synthesized) -> None:
    """An acknowledgement that an action "supports no resource-level permission" is checked
    against the Service Authorization Reference (cfn-lint's copy of it): an action with a
    resource type is scoped to it (``sagemaker:ListModelPackages`` to the package group's
    versions), unless AWS's own documentation grants it on ``*``."""
    reference = _resource_types()
    found = _star_statements(dev)
    assert any("sagemaker:ListModelPackages" in as_list(s["Action"]) for s in found)
    offending = []
    for statement in found:
        if "*" not in as_list(statement["Resource"]):
            continue
        for action in as_list(statement["Action"]):
            service, name = action.split(":")
            types = reference[service]["Actions"][name.lower()].get("Resources", [])
            if types and action not in STAR_BY_DOCUMENTATION:
                offending.append(f"{action} (resource types {types[:3]}...)")
    assert not offending, offending


def test_registrar_lists_model_packages_of_this_account_only(dev: Synthesized) -> None:
    """ListModelPackages' resource type is model-package; which ARN a group-filtered list is
    evaluated against is not documented, so the statement names this account's and region's
    model packages (stacks.components.model_registry.list_versions_statement), never '*'."""
    found = statements(dev["TrainingPipeline"], "PipelineRegistrarRole")
    [listing] = [s for s in found if "sagemaker:ListModelPackages" in as_list(s["Action"])]
    resources = sorted(flatten(r) for r in as_list(listing["Resource"]))
    assert resources == ["arn:<ref>:sagemaker:<ref>:<ref>:model-package/*"]


def test_registrar_gets_the_lineage_it_puts_on_every_version(dev: Synthesized) -> None:
    """The manifest it hashes, the training image tag of this synthesis, the commit."""
    function = only(
        dev["TrainingPipeline"],
        "AWS::Lambda::Function",
        {"FunctionName": "readmission-dev-registrar"},
    )
    env = function["Environment"]["Variables"]
    assert flatten(env["MANIFEST_S3_URI"]) == "s3://<ref>/manifest.json"
    assert env["TRAINING_IMAGE_TAG"] == _tag(dev, "TRAINING_IMAGE_TAG")
    assert env["TRAINING_IMAGE_TAG"].startswith("2.6.0-")
    assert {"SOURCE_REPOSITORY", "SOURCE_COMMIT"} <= set(env)


def test_registrar_reads_the_etl_manifest_and_nothing_else_of_the_curated_data(
    dev: Synthesized,
) -> None:
    """One object, read only: no listing, no features, no protected attributes."""
    found = statements(dev["TrainingPipeline"], "PipelineRegistrarRole")
    [manifest] = [s for s in found if s.get("Sid") == "HashEtlManifest"]
    assert as_list(manifest["Action"]) == ["s3:GetObject"]
    assert [flatten(r) for r in as_list(manifest["Resource"])] == ["<ref>/manifest.json"]
    curated = [
        s for s in found
        if any("manifest.json" in flatten(r) or "features" in flatten(r)
               for r in as_list(s["Resource"]))
    ]  # fmt: skip
    assert curated == [manifest]
