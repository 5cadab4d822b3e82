"""One battery for both worklist stores: the DynamoDB table (moto) and the local JSON file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from contracts.worklist import (
    KEY_DAY,
    KEY_ENTRY,
    KEY_EXPIRES_AT,
    STATUS_FAILED,
    STATUS_SCORED,
    DaySummary,
    Factor,
    WorklistEntry,
)
from worklist.dynamodb import DynamoDbWorklistStore, UnprocessedItemsError
from worklist.local import LocalWorklistStore
from worklist.store import WorklistStore

DAY = "2026-12-02"
TABLE = "worklist-test"


def create_table(client: Any, name: str = TABLE) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": KEY_DAY, "KeyType": "HASH"},
            {"AttributeName": KEY_ENTRY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": KEY_DAY, "AttributeType": "S"},
            {"AttributeName": KEY_ENTRY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture(params=["dynamodb", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorklistStore]:
    if request.param == "local":
        yield LocalWorklistStore(tmp_path / "worklist.json")
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        yield DynamoDbWorklistStore(client, TABLE)


def entry(number: int, day: str = DAY, failed: bool = False) -> WorklistEntry:
    key = f"{number:064x}"
    if failed:
        return WorklistEntry(
            day,
            key,
            "p" * 64,
            "medicine",
            STATUS_FAILED,
            "2026-12-03T02:00:00+00:00",
            failure_reason="no prediction",
        )
    return WorklistEntry(
        day=day,
        encounter_key=key,
        patient_key="p" * 64,
        unit="surgery",
        status=STATUS_SCORED,
        scored_at="2026-12-03T02:00:00+00:00",
        probability=number / 1000,
        risk_band="low",
        model_version="3",
        factors=(Factor("age = 71", "increases_risk", 0.125, "age = 71 raises the risk"),),
    )


def summary(scored: int, failed: int = 0, day: str = DAY) -> DaySummary:
    return DaySummary(day, "2026-12-03T02:05:00+00:00", scored, failed, 0.1, ("3",))


def test_a_day_reads_back_exactly_as_written(store: WorklistStore) -> None:
    entries = [entry(n) for n in range(60)] + [entry(99, failed=True)]
    store.write_day(summary(60, 1), entries)
    read_summary, read_entries = store.read_day(DAY)
    assert read_summary == summary(60, 1)
    assert sorted(read_entries, key=lambda e: e.encounter_key) == sorted(
        entries, key=lambda e: e.encounter_key
    )
    assert store.read_entry(DAY, entries[7].encounter_key) == entries[7]
    failed = store.read_entry(DAY, f"{99:064x}")
    assert failed is not None
    assert failed.failure_reason == "no prediction"


def test_an_unknown_day_or_entry_is_none(store: WorklistStore) -> None:
    store.write_day(summary(1), [entry(1)])
    assert store.read_day("2026-12-01") == (None, [])
    assert store.read_entry(DAY, f"{2:064x}") is None
    assert store.read_entry(DAY, "~summary") is None


def test_an_empty_day_has_its_summary(store: WorklistStore) -> None:
    store.write_day(summary(0), [])
    read_summary, entries = store.read_day(DAY)
    assert read_summary == summary(0)
    assert entries == []


def test_rewriting_a_day_replaces_it_and_leaves_other_days(store: WorklistStore) -> None:
    store.write_day(summary(30), [entry(n) for n in range(30)])
    store.write_day(summary(2, day="2026-12-03"), [entry(n, day="2026-12-03") for n in range(2)])
    store.write_day(summary(3), [entry(n) for n in range(40, 43)])
    read_summary, entries = store.read_day(DAY)
    assert read_summary == summary(3)
    assert {e.encounter_key for e in entries} == {f"{n:064x}" for n in range(40, 43)}
    assert len(store.read_day("2026-12-03")[1]) == 2


def test_entries_of_another_day_are_refused(store: WorklistStore) -> None:
    with pytest.raises(ValueError, match="day"):
        store.write_day(summary(1), [entry(1, day="2026-12-03")])


def test_duplicate_keys_are_refused(store: WorklistStore) -> None:
    with pytest.raises(ValueError, match="distinct"):
        store.write_day(summary(2), [entry(1), entry(1)])


class FlakyClient:
    """Answers BatchWriteItem with part of the request unprocessed, as DynamoDB may."""

    def __init__(self, client: Any, unprocessed_rounds: int) -> None:
        self._client = client
        self.rounds = unprocessed_rounds
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        ((table, requests),) = RequestItems.items()
        if self.rounds > 0 and len(requests) > 1:
            self.rounds -= 1
            half = len(requests) // 2
            self._client.batch_write_item(RequestItems={table: requests[:half]})
            return {"UnprocessedItems": {table: requests[half:]}}
        return self._client.batch_write_item(RequestItems=RequestItems)


def test_unprocessed_items_are_resent_with_backoff() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        flaky = FlakyClient(client, unprocessed_rounds=3)
        delays: list[float] = []
        store = DynamoDbWorklistStore(flaky, TABLE, sleep=delays.append)
        store.write_day(summary(25), [entry(n) for n in range(25)])
        assert len(store.read_day(DAY)[1]) == 25
        assert delays == sorted(delays)
        assert len(delays) == 3
        assert delays[0] > 0


def test_writes_still_unprocessed_after_every_attempt_fail_loudly() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        store = DynamoDbWorklistStore(
            FlakyClient(client, unprocessed_rounds=100), TABLE, max_attempts=3, sleep=lambda s: None
        )
        with pytest.raises(UnprocessedItemsError, match="unprocessed"):
            store.write_day(summary(10), [entry(n) for n in range(10)])


def test_a_day_larger_than_one_query_page_is_read_whole() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        store = DynamoDbWorklistStore(client, TABLE)
        pages: list[int] = []
        real_query = client.query

        def paged_query(**arguments: Any) -> dict[str, Any]:
            answer = real_query(**{**arguments, "Limit": 7})
            pages.append(len(answer["Items"]))
            return answer

        client.query = paged_query  # type: ignore[method-assign]
        store.write_day(summary(30), [entry(n) for n in range(30)])
        read_summary, entries = store.read_day(DAY)
        assert read_summary is not None
        assert len(entries) == 30
        assert len(pages) > 4


def test_items_carry_the_ttl_attribute() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        DynamoDbWorklistStore(client, TABLE).write_day(summary(1), [entry(1)])
        items = client.scan(TableName=TABLE)["Items"]
        assert len(items) == 2
        assert all(KEY_EXPIRES_AT in item for item in items)
        assert all("N" in item[KEY_EXPIRES_AT] for item in items)
