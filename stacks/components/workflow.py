"""What the platform's Step Functions workflows share: error handling, logging, sync grants.

The training pipeline (``training_pipeline.py``) and nightly batch scoring
(``batch_scoring.py``) wire their tasks the same way: a failed task hands on only the error's
name (a cause can quote the data a job was reading), the state machine is traced and logs
every event without execution data to an encrypted log group, and a SageMaker ``.sync``
integration gets exactly the job, tag and managed-rule permissions the Step Functions guide
lists (https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.components.log_groups import encrypted_log_group

#: Where a caught error lands in the state: beside the input, which travels on.
ERROR_PATH = "$.error"
#: What a ``.sync`` integration needs on the EventBridge rule Step Functions manages for it.
SYNC_RULE_ACTIONS = ("events:PutTargets", "events:PutRule", "events:DescribeRule")
#: What a ``.sync`` integration needs on every resource (the guide grants it so).
SYNC_TAG_ACTIONS = ("sagemaker:ListTags",)


class Catching(Protocol):
    def add_catch(
        self, handler: sfn.IChainable, *, errors: list[str], result_path: str
    ) -> object: ...


CatchingT = TypeVar("CatchingT", bound=Catching)


def catch_all(state: CatchingT, handler: sfn.IChainable) -> CatchingT:
    """Send any error of ``state`` to ``handler``, with only the error at :data:`ERROR_PATH`."""
    state.add_catch(handler, errors=["States.ALL"], result_path=ERROR_PATH)
    return state


def logged_state_machine(
    scope: Construct,
    *,
    name: str,
    definition: sfn.IChainable,
    timeout: Duration,
    key: kms.IKey,
    log_retention_days: int,
    retain_logs: bool,
) -> sfn.StateMachine:
    """A traced state machine logging every event, without execution data, under ``key``.

    State inputs and outputs carry S3 locations and counts, but an error cause could quote a
    record: execution data stays out of the logs.
    """
    return sfn.StateMachine(
        scope,
        "StateMachine",
        state_machine_name=name,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=encrypted_log_group(
                scope,
                "Logs",
                key=key,
                days=log_retention_days,
                retain=retain_logs,
                log_group_name=f"/aws/vendedlogs/states/{name}",
            ),
            level=sfn.LogLevel.ALL,
            include_execution_data=False,
        ),
    )


def sync_job_statements(
    kind: str, actions: Sequence[str], job_arn: str
) -> tuple[iam.PolicyStatement, iam.PolicyStatement]:
    """``Run<kind>Jobs`` on the jobs and ``Read<kind>JobTags`` on every resource."""
    return (
        iam.PolicyStatement(sid=f"Run{kind}Jobs", actions=list(actions), resources=[job_arn]),
        iam.PolicyStatement(
            sid=f"Read{kind}JobTags", actions=list(SYNC_TAG_ACTIONS), resources=["*"]
        ),
    )


def sync_rule_statement(kind: str, rule_name: str) -> iam.PolicyStatement:
    """``Sync<kind>JobEvents``: the managed EventBridge rule a ``.sync`` integration polls by."""
    return iam.PolicyStatement(
        sid=f"Sync{kind}JobEvents",
        actions=list(SYNC_RULE_ACTIONS),
        resources=[f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{rule_name}"],
    )
