"""The data API reads the DynamoDB worklist table: a day over several Query pages, one item, and
the scored days by BatchGetItem of summary items (moto holds the table; the key schema is the
one contracts.worklist names)."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest

from contracts.worklist import KEY_DAY, KEY_ENTRY
from lambdas.worklist_api.table import DynamoDbWorklistReader, recent_days
from tests.lambdas.worklist_fixtures import DAY, EMPTY_DAY, demo_day, empty_day, key

TABLE = "worklist"


@pytest.fixture
def reader(mocked_aws) -> DynamoDbWorklistReader:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=TABLE,
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
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(TABLE)
    summary, entries = demo_day()
    with table.batch_writer() as batch:
        for item in [summary.to_item(), empty_day().to_item(), *(e.to_item() for e in entries)]:
            batch.put_item(Item=item)
    return DynamoDbWorklistReader(TABLE, client)


def test_reads_a_day_across_query_pages(reader, monkeypatch) -> None:
    client = reader._client
    real_query = client.query
    pages = []

    def small_pages(**request):
        pages.append(request.get("ExclusiveStartKey"))
        return real_query(Limit=5, **request)

    monkeypatch.setattr(client, "query", small_pages)
    summary, entries = reader.read_day(DAY)
    expected_summary, expected_entries = demo_day()
    assert summary == expected_summary
    assert sorted(entries, key=lambda e: e.encounter_key) == sorted(
        expected_entries, key=lambda e: e.encounter_key
    )
    assert len(pages) > 1


def test_reads_one_entry_and_none_for_unknown(reader) -> None:
    entry = reader.read_entry(DAY, key("encounter-3"))
    assert entry is not None
    assert entry.probability == 0.55
    assert reader.read_entry(DAY, key("nobody")) is None


def test_scored_days_come_from_summary_items(reader) -> None:
    days = recent_days(dt.date(2026, 12, 3), 30)
    assert days[0] == "2026-12-04"
    assert len(days) == 32
    assert reader.scored_days(days) == [DAY, EMPTY_DAY]
    assert reader.read_day("2026-11-01") == (None, [])
