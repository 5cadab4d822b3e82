"""The deployer, driven through its Lambda handler, against scripted endpoint state sequences.

Each scenario is a script of what happens in the account (approvals, rejections, events that
arrive twice or out of order, the endpoint moving on, a failed endpoint, a rolled-back update, a
missing artifact) and what must be true at the end: which version serves (``None``: nothing
serves) and what the on-call was told. Triggers go through a FIFO queue model: a trigger the
handler reports as failed stays at the head of the queue and is delivered again after the
endpoint has moved on (lambdas/deployer/app.py).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from contracts.deployment import REJECTED_ROLLOUT_METRIC
from contracts.drift import baseline_s3_key, build_baseline
from contracts.model_artifact import CALIBRATION_FILE, DRIFT_BASELINE_FILE, WEIGHTS_FILE
from lambdas.deployer import app
from lambdas.deployer.baseline import VERSION_METADATA_KEY
from lambdas.deployer.deployment import Clients
from tests.contracts.test_drift import record
from tests.lambdas.conftest import FakeLambdaContext
from tests.lambdas.deployer_sim import (
    APPROVER_ROLE,
    REGISTRAR_ROLE,
    FakeCloudWatch,
    FakeSageMaker,
    FakeSNS,
    FakeSqs,
    package_event,
    sweep_event,
)

GROUP = "readmission-models"
ENDPOINT = "readmission-test"
CAPTURE_BUCKET = "capture-bucket"
MODEL_BUCKET = "model-bucket"
REJECTION_ALARM = "readmission-test-rejected-rollout"
ROLLBACK_ALARMS = ("readmission-test-latency", "readmission-test-5xx")
#: Decision threshold in every test model's calibration.json.
THRESHOLD = 0.3
#: Bound on deliveries per run: a reconciler that loops forever fails the test, not the suite.
MAX_DELIVERIES = 60


def model_archive() -> bytes:
    baseline = build_baseline([record(age_years=a) for a in (30, 50, 70)], [0.1, 0.2, 0.3])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in {
            f"./{WEIGHTS_FILE}": b"\x00" * 64,
            f"./{DRIFT_BASELINE_FILE}": json.dumps(baseline).encode(),
            f"./{CALIBRATION_FILE}": json.dumps(
                {"temperature": 1.0, "threshold": THRESHOLD}
            ).encode(),
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def deployer_env() -> dict[str, str]:
    return {
        "ENDPOINT_NAME": ENDPOINT,
        "EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/serving",
        "INSTANCE_TYPE": "ml.m5.large",
        "INSTANCE_COUNT": "1",
        "DATA_CAPTURE_S3_URI": f"s3://{CAPTURE_BUCKET}/capture",
        "KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/1",
        "ROLLBACK_ALARM_NAMES": ",".join(ROLLBACK_ALARMS),
        "REJECTION_ALARM_NAME": REJECTION_ALARM,
        "SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
        "MODEL_PACKAGE_GROUP_NAME": GROUP,
        "APPROVER_ROLE_ARN": APPROVER_ROLE,
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/deployments.fifo",
    }


class Account:
    """The fake account, the queue, and a script vocabulary for the scenarios."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.queue: deque[str] = deque()
        self.cloudwatch = FakeCloudWatch()
        self.sagemaker = FakeSageMaker(GROUP, self.queue, self.cloudwatch)
        self.sns = FakeSNS()
        self.sqs = FakeSqs()
        self.arns: dict[int, str] = {}
        self.deliveries = 0
        self.served_versions: set[int | None] = set()

    def clients(self) -> Clients:
        return Clients(
            sagemaker=self.sagemaker, s3=self.s3, sns=self.sns, cloudwatch=self.cloudwatch
        )

    # -- what happens in the registry ------------------------------------------------------

    def _register(self, version: int, status: str, by: str) -> str:
        key = f"models/v{version}/model.tar.gz"
        self.s3.put_object(Bucket=MODEL_BUCKET, Key=key, Body=model_archive())
        arn = self.sagemaker.register(version, f"s3://{MODEL_BUCKET}/{key}", status, by)
        self.arns[version] = arn
        return arn

    def _change(
        self, version: int, status: str, by: str = APPROVER_ROLE, emit: bool = True
    ) -> None:
        if version not in self.arns:
            self._register(version, "PendingManualApproval", REGISTRAR_ROLE)
        self.sagemaker.set_status(self.arns[version], status, by)
        if emit:
            self.queue.append(package_event(self.sagemaker.packages[self.arns[version]]))

    def approve(self, version: int, *, emit: bool = True) -> None:
        self._change(version, "Approved", emit=emit)

    def reject(self, version: int) -> None:
        self._change(version, "Rejected")

    def reapprove(self, version: int) -> None:
        self._change(version, "PendingManualApproval")
        self._change(version, "Approved")

    def approve_as(self, version: int, role: str) -> None:
        self._change(version, "Approved", by=role)

    def register_approved(self, version: int) -> None:
        """A machine registers a version straight as Approved (IAM forbids it; second lock)."""
        arn = self._register(version, "Approved", REGISTRAR_ROLE)
        self.queue.append(package_event(self.sagemaker.packages[arn]))

    def drop_artifact(self, version: int) -> None:
        self.s3.delete_object(Bucket=MODEL_BUCKET, Key=f"models/v{version}/model.tar.gz")

    def duplicate_last(self) -> None:
        self.queue.append(self.queue[-1])

    def swap_last_two(self) -> None:
        last = self.queue.pop()
        before = self.queue.pop()
        self.queue.extend([last, before])

    def sweep(self) -> None:
        self.queue.append(sweep_event())

    def lose_queued(self) -> None:
        """Triggers lost (e.g. left in a dead-letter queue nobody redrives)."""
        self.queue.clear()

    # -- delivery --------------------------------------------------------------------------

    def deliver(self) -> bool:
        """Hand the head of the queue to the handler; ``True`` if it was consumed."""
        body = self.queue[0]
        self.deliveries += 1
        event = {
            "Records": [
                {
                    "messageId": f"m-{self.deliveries}",
                    "receiptHandle": f"r-{self.deliveries}",
                    "body": body,
                    "attributes": {
                        "MessageGroupId": GROUP,
                        "MessageDeduplicationId": f"d-{self.deliveries}",
                        "ApproximateReceiveCount": "1",
                        "SentTimestamp": "0",
                        "SenderId": "events",
                        "ApproximateFirstReceiveTimestamp": "0",
                    },
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deployments.fifo",
                    "awsRegion": "us-east-1",
                }
            ]
        }
        result = app.lambda_handler(event, FakeLambdaContext())
        if result["batchItemFailures"]:
            return False
        self.queue.popleft()
        return True

    def step(self) -> None:
        """Deliver one trigger; if it must wait, let the endpoint move on one step."""
        if not self.deliver():
            self.sagemaker.tick()
        self.served_versions.add(self.sagemaker.serving_version())

    def run(self) -> None:
        """Deliver until the queue is empty (the endpoint moving on whenever a trigger waits)."""
        while self.queue:
            assert self.deliveries < MAX_DELIVERIES, "the deployer never settled"
            self.step()

    # -- what is true ----------------------------------------------------------------------

    def active_baseline(self) -> int | None:
        try:
            head = self.s3.head_object(Bucket=CAPTURE_BUCKET, Key=baseline_s3_key(ENDPOINT))
        except self.s3.exceptions.ClientError:
            return None
        return int(head["Metadata"][VERSION_METADATA_KEY])

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [request for name, request in self.sagemaker.calls if name == operation]


@pytest.fixture
def account(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Account:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=CAPTURE_BUCKET)
    s3.create_bucket(Bucket=MODEL_BUCKET)
    fake = Account(s3)
    for name, value in deployer_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(app, "clients", fake.clients)
    monkeypatch.setattr(app, "queue_client", lambda: fake.sqs)
    return fake


Script = Callable[[Account], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    script: Script
    serves: int | None
    #: Each must be a substring of some notice's status, in this order.
    told: tuple[str, ...] = ()
    #: None of these may appear in any notice.
    never_told: tuple[str, ...] = ()


def serving(account: Account, version: int) -> None:
    account.approve(version)
    account.run()


def _first_deploy(a: Account) -> None:
    a.approve(1)
    a.run()


def _duplicate(a: Account) -> None:
    a.approve(1)
    a.duplicate_last()
    a.duplicate_last()
    a.run()
    assert len(a.calls("CreateEndpoint")) == 1
    assert len(a.calls("CreateModel")) == 1


def _out_of_order_approvals(a: Account) -> None:
    a.approve(1)
    a.approve(2)
    a.swap_last_two()  # v2's event arrives first
    a.run()
    assert len(a.calls("UpdateEndpoint")) == 0  # v1 was never rolled out


def _rejection_before_its_approval_arrives(a: Account) -> None:
    serving(a, 1)
    a.approve(2)
    a.reject(2)
    a.swap_last_two()  # "Rejected" delivered before "Approved"
    a.run()
    assert a.calls("UpdateEndpoint") == []


def _older_approval_late(a: Account) -> None:
    serving(a, 2)
    a.approve(1)
    a.run()
    assert a.calls("UpdateEndpoint") == []


def _reject_during_update(a: Account) -> None:
    serving(a, 1)
    a.approve(2)
    a.deliver()  # the update to v2 starts
    assert a.sagemaker.endpoint is not None
    assert a.sagemaker.endpoint.status == "Updating"
    a.reject(2)
    a.run()
    assert REJECTION_ALARM in a.cloudwatch.set_state_calls
    assert any(
        m["MetricData"][0]["MetricName"] == REJECTED_ROLLOUT_METRIC for m in a.cloudwatch.metrics
    )
    [update] = a.calls("UpdateEndpoint")
    listed = [
        x["AlarmName"] for x in update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    ]
    assert REJECTION_ALARM in listed


def _reject_during_first_create(a: Account) -> None:
    a.approve(1)
    a.deliver()  # creation starts
    a.reject(1)
    a.run()


def _reject_during_create_with_older_approved(a: Account) -> None:
    a.approve(1, emit=False)  # approved earlier, never deployed (its trigger was lost)
    a.approve(2)
    a.deliver()  # creation of v2 starts
    a.reject(2)
    a.run()


def _reject_served_with_previous_approved(a: Account) -> None:
    serving(a, 1)
    serving(a, 2)
    a.reject(2)
    a.run()
    rollback = a.calls("UpdateEndpoint")[-1]["DeploymentConfig"]
    routing = rollback["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "ALL_AT_ONCE"
    assert rollback["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": REJECTION_ALARM}]}


def _reject_only_version(a: Account) -> None:
    serving(a, 1)
    a.reject(1)
    a.run()


def _approve_during_update(a: Account) -> None:
    serving(a, 1)
    a.approve(2)
    a.deliver()  # v1 -> v2 starts
    a.approve(3)  # arrives while the update runs
    a.run()
    targets = [
        a.sagemaker.version_of_config(u["EndpointConfigName"]) for u in a.calls("UpdateEndpoint")
    ]
    assert targets == [2, 3]


def _failed_endpoint_then_next_approval(a: Account) -> None:
    a.sagemaker.fail_create_versions.add(1)
    a.approve(1)
    a.run()
    assert a.sagemaker.endpoint is None
    a.approve(2)
    a.run()


def _failed_endpoint_is_not_recreated_forever(a: Account) -> None:
    a.sagemaker.fail_create_versions.add(1)
    a.approve(1)
    a.run()
    a.sweep()
    a.sweep()
    a.run()
    assert len(a.calls("CreateEndpoint")) == 1


def _update_rolls_back(a: Account) -> None:
    serving(a, 1)
    a.sagemaker.fail_update_versions.add(2)
    a.approve(2)
    a.run()
    a.sweep()
    a.run()
    assert len(a.calls("UpdateEndpoint")) == 1  # not retried after the rollback


def _reapproval_retries_a_rolled_back_version(a: Account) -> None:
    serving(a, 1)
    a.sagemaker.fail_update_versions.add(2)
    a.approve(2)
    a.run()
    a.sagemaker.fail_update_versions.clear()
    a.reapprove(2)
    a.run()


def _missing_artifact(a: Account) -> None:
    serving(a, 1)
    a.approve(2, emit=False)
    a.drop_artifact(2)
    a.sweep()
    a.run()
    assert a.calls("UpdateEndpoint") == []


def _missing_artifact_first_deploy(a: Account) -> None:
    a.approve(1, emit=False)
    a.drop_artifact(1)
    a.sweep()
    a.run()
    assert a.calls("CreateEndpoint") == []


def _image_refused(a: Account) -> None:
    serving(a, 1)
    a.sagemaker.bad_image_versions.add(2)
    a.approve(2)
    a.run()
    a.sweep()
    a.run()
    assert a.calls("UpdateEndpoint") == []
    assert len(a.calls("CreateModel")) == 2  # v1, and v2 once: not retried every sweep


def _machine_registers_approved(a: Account) -> None:
    serving(a, 1)
    a.register_approved(2)
    a.run()


def _approved_by_someone_else(a: Account) -> None:
    serving(a, 1)
    a.approve_as(2, REGISTRAR_ROLE)
    a.run()


def _lost_approval_recovered_by_sweep(a: Account) -> None:
    a.approve(1)
    a.lose_queued()
    a.sweep()
    a.run()


def _pending_does_nothing(a: Account) -> None:
    a._change(1, "PendingManualApproval")
    a.run()
    assert a.sagemaker.calls == []


def _other_group_ignored(a: Account) -> None:
    serving(a, 1)
    other = dict(a.sagemaker.packages[a.arns[1]])
    other["ModelPackageGroupName"] = "someone-elses-models"
    other["ModelApprovalStatus"] = "Rejected"
    a.queue.append(package_event(other))
    a.run()


def _unreadable_message_does_not_block(a: Account) -> None:
    a.queue.append("not json")
    a.queue.append(json.dumps({"detail-type": "Something Else", "detail": {}}))
    a.approve(1)
    a.run()


SCENARIOS = [
    Scenario(
        "first approval creates the endpoint",
        _first_deploy,
        1,
        ("deployment started", "version now serving"),
    ),
    Scenario("duplicate events deploy once", _duplicate, 1, ("deployment started",)),
    Scenario("approvals out of order: the highest serves", _out_of_order_approvals, 2),
    Scenario("rejection delivered before its approval", _rejection_before_its_approval_arrives, 1),
    Scenario("an older version approved late does not displace", _older_approval_late, 2),
    Scenario(
        "reject during the update to that version",
        _reject_during_update,
        1,
        ("rejected version being rolled out, rollback started", "deployment rolled back"),
    ),
    Scenario(
        "reject during the first creation: nothing serves",
        _reject_during_first_create,
        None,
        ("rejected version being created", "endpoint deleted"),
    ),
    Scenario(
        "reject during creation: the older approved version serves",
        _reject_during_create_with_older_approved,
        1,
        ("rejected version being created", "rolling back"),
    ),
    Scenario(
        "reject the served version: previous approved serves",
        _reject_served_with_previous_approved,
        1,
        ("rolling back",),
    ),
    Scenario(
        "reject the only version: nothing serves", _reject_only_version, None, ("endpoint deleted",)
    ),
    Scenario("approve during an update: deployed once it settles", _approve_during_update, 3),
    Scenario(
        "a failed endpoint does not block the next deployment",
        _failed_endpoint_then_next_approval,
        2,
        ("endpoint failed and was deleted",),
    ),
    Scenario(
        "a failed endpoint is not recreated forever",
        _failed_endpoint_is_not_recreated_forever,
        None,
    ),
    Scenario(
        "an update that rolls back is not retried",
        _update_rolls_back,
        1,
        ("deployment rolled back",),
    ),
    Scenario(
        "re-approval retries a rolled-back version", _reapproval_retries_a_rolled_back_version, 2
    ),
    Scenario(
        "missing artifact: previous version keeps serving",
        _missing_artifact,
        1,
        ("approved version cannot be deployed",),
    ),
    Scenario(
        "missing artifact on the first deployment: nothing serves",
        _missing_artifact_first_deploy,
        None,
        ("approved version cannot be deployed",),
    ),
    Scenario(
        "an image SageMaker refuses is reported once", _image_refused, 1, ("cannot be deployed",)
    ),
    Scenario(
        "a version registered as Approved by a machine never serves",
        _machine_registers_approved,
        1,
        ("approval not made by the approver role",),
    ),
    Scenario(
        "an approval by another role never serves",
        _approved_by_someone_else,
        1,
        ("approval not made by the approver role",),
    ),
    Scenario("a lost approval is deployed by the sweep", _lost_approval_recovered_by_sweep, 1),
    Scenario("pending approval does nothing", _pending_does_nothing, None),
    Scenario("another group's events are ignored", _other_group_ignored, 1),
    Scenario("unreadable messages do not block the queue", _unreadable_message_does_not_block, 1),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(account: Account, scenario: Scenario) -> None:
    scenario.script(account)

    assert account.sagemaker.serving_version() == scenario.serves
    assert not account.queue, "every trigger is consumed once the endpoint settles"
    statuses = account.sns.statuses
    position = 0
    for expected in scenario.told:
        matches = [i for i, s in enumerate(statuses) if expected in s and i >= position]
        assert matches, f"not told {expected!r} (after notice {position}); told {statuses}"
        position = matches[0] + 1
    for forbidden in scenario.never_told:
        assert not any(forbidden in s for s in statuses)
    # The drift baseline is the serving version's, never a version that does not serve.
    if scenario.serves is not None:
        assert account.active_baseline() == scenario.serves
    # A version that never served never had its baseline made active.
    assert account.active_baseline() in {None, *account.served_versions}


def test_a_waiting_trigger_is_made_visible_again_after_the_retry_delay(account: Account) -> None:
    account.approve(1)

    assert account.deliver() is False  # creating: the trigger stays

    assert account.sqs.visibility_changes == [60]


def test_the_baseline_switches_only_when_the_new_version_serves(account: Account) -> None:
    serving(account, 1)
    account.approve(2)
    account.deliver()  # update to v2 started
    assert account.active_baseline() == 1  # v2 does not serve yet
    account.run()
    assert account.active_baseline() == 2


def test_the_baseline_stays_when_an_update_rolls_back(account: Account) -> None:
    serving(account, 1)
    account.sagemaker.fail_update_versions.add(2)
    account.approve(2)
    account.run()
    assert account.active_baseline() == 1
