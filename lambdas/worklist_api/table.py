"""Reading the worklist table (DynamoDB): a day's items by Query, one item by GetItem, and
which days were scored by one BatchGetItem of the days' summary items.

Read-only on purpose: the function's role is granted read access only, and it reads with
the same contract records (``from_item``) that nightly batch scoring writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from contracts.worklist import KEY_DAY, KEY_ENTRY, SUMMARY_SORT_KEY, DaySummary, WorklistEntry

#: BatchGetItem's limit on keys per request.
BATCH_GET_MAX_KEYS = 100
_DESERIALIZER = TypeDeserializer()


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}


class DynamoDbWorklistReader:
    """The worklist table, read through a boto3 DynamoDB client passed in."""

    def __init__(self, table_name: str, client: Any) -> None:
        self._table = table_name
        self._client = client

    def read_day(self, day: str) -> tuple[DaySummary | None, list[WorklistEntry]]:
        summary: DaySummary | None = None
        entries: list[WorklistEntry] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#day = :day",
            "ExpressionAttributeNames": {"#day": KEY_DAY},
            "ExpressionAttributeValues": {":day": {"S": day}},
        }
        while True:
            page = self._client.query(**request)
            for raw in page.get("Items", []):
                item = _plain(raw)
                if item[KEY_ENTRY] == SUMMARY_SORT_KEY:
                    summary = DaySummary.from_item(item)
                else:
                    entries.append(WorklistEntry.from_item(item))
            if "LastEvaluatedKey" not in page:
                return summary, entries
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def read_entry(self, day: str, encounter_key: str) -> WorklistEntry | None:
        answer = self._client.get_item(
            TableName=self._table,
            Key={KEY_DAY: {"S": day}, KEY_ENTRY: {"S": encounter_key}},
        )
        item = answer.get("Item")
        return None if item is None else WorklistEntry.from_item(_plain(item))

    def scored_days(self, days: Sequence[str]) -> list[str]:
        """Those of ``days`` that have a summary item, newest first."""
        found: set[str] = set()
        for start in range(0, len(days), BATCH_GET_MAX_KEYS):
            keys = [
                {KEY_DAY: {"S": day}, KEY_ENTRY: {"S": SUMMARY_SORT_KEY}}
                for day in days[start : start + BATCH_GET_MAX_KEYS]
            ]
            request: dict[str, Any] = {
                self._table: {
                    "Keys": keys,
                    "ProjectionExpression": "#day",
                    "ExpressionAttributeNames": {"#day": KEY_DAY},
                }
            }
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                found.update(
                    str(_plain(item)[KEY_DAY]) for item in answer["Responses"].get(self._table, [])
                )
                request = answer.get("UnprocessedKeys") or {}
        return sorted(found, reverse=True)


def recent_days(today: dt.date, window_days: int) -> list[str]:
    """``today`` (plus tomorrow, for a hospital ahead of UTC) back ``window_days`` days."""
    first = today + dt.timedelta(days=1)
    return [(first - dt.timedelta(days=n)).isoformat() for n in range(window_days + 2)]
