"""The worklist store in DynamoDB: one item per entry of a day, one summary item per day.

The table has partition key ``contracts.worklist.KEY_DAY`` and sort key ``KEY_ENTRY`` (both
strings) and TTL on ``KEY_EXPIRES_AT``. Items are the contract's ``to_item`` dicts unchanged
(their only numbers are integers; probabilities travel as strings), so the item a reader gets
back is the item the writer put.

* Writes use ``BatchWriteItem`` in chunks of 25 (the API's limit) and resend what DynamoDB
  returns as ``UnprocessedItems`` with exponential backoff, as its documentation asks
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html);
  after ``max_attempts`` the write fails loudly instead of losing items.
* Reads ``Query`` one partition and follow ``LastEvaluatedKey`` until the day is read whole
  (a page holds at most 1 MB).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from contracts.worklist import KEY_DAY, KEY_ENTRY, SUMMARY_SORT_KEY, DaySummary, WorklistEntry

#: Most requests in one BatchWriteItem call.
BATCH_WRITE_LIMIT = 25
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BASE_DELAY_S = 0.05
MAX_DELAY_S = 5.0

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class UnprocessedItemsError(RuntimeError):
    """DynamoDB still refused some writes after every retry (counts only, no item content)."""


def to_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """A contract item as DynamoDB's typed attribute map."""
    return {key: _SERIALIZER.serialize(value) for key, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    return value


def from_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed attribute map back to the contract's plain item."""
    return {key: _plain(_DESERIALIZER.deserialize(value)) for key, value in attributes.items()}


class DynamoDbWorklistStore:
    """:class:`worklist.store.WorklistStore` over one DynamoDB table (boto3 client passed in)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay_s: float = DEFAULT_BASE_DELAY_S,
        sleep: Callable[[float], None] = time.sleep,
        consistent_reads: bool = True,
    ) -> None:
        """``consistent_reads=False``: ``read_day``/``read_entry`` read eventually consistent
        (half the read capacity; the worklist API, reading days written hours before). The
        writer's own look-up of a day's keys always reads consistently."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._client = client
        self._table = table_name
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._sleep = sleep
        self._consistent_reads = consistent_reads

    def write_day(self, summary: DaySummary, entries: Sequence[WorklistEntry]) -> None:
        """Put the entries, delete the day's entries this run no longer has, then the summary.

        The summary goes last, so a reader that finds it finds the whole day.
        """
        wanted = {entry.encounter_key for entry in entries}
        if len(wanted) != len(entries):
            raise ValueError("a day's entries must have distinct encounter keys")
        if any(entry.day != summary.day for entry in entries):
            raise ValueError("every entry must belong to the summary's day")
        stale = [key for key in self._entry_keys(summary.day) if key not in wanted]
        requests = [{"PutRequest": {"Item": to_attributes(e.to_item())}} for e in entries]
        requests += [
            {"DeleteRequest": {"Key": to_attributes({KEY_DAY: summary.day, KEY_ENTRY: key})}}
            for key in stale
        ]
        self._batch_write(requests)
        self._batch_write([{"PutRequest": {"Item": to_attributes(summary.to_item())}}])

    def read_day(self, day: str) -> tuple[DaySummary | None, list[WorklistEntry]]:
        """The day's summary (``None`` if never written) and its entries in key order."""
        summary: DaySummary | None = None
        entries: list[WorklistEntry] = []
        for item in self._query(day, consistent=self._consistent_reads):
            if item[KEY_ENTRY] == SUMMARY_SORT_KEY:
                summary = DaySummary.from_item(item)
            else:
                entries.append(WorklistEntry.from_item(item))
        return summary, entries

    def read_entry(self, day: str, encounter_key: str) -> WorklistEntry | None:
        if encounter_key == SUMMARY_SORT_KEY:
            return None
        answer = self._client.get_item(
            TableName=self._table,
            Key=to_attributes({KEY_DAY: day, KEY_ENTRY: encounter_key}),
            ConsistentRead=self._consistent_reads,
        )
        item = answer.get("Item")
        return None if item is None else WorklistEntry.from_item(from_attributes(item))

    def _query(
        self, day: str, projection: str | None = None, consistent: bool = True
    ) -> Iterator[dict[str, Any]]:
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#day = :day",
            "ExpressionAttributeNames": {"#day": KEY_DAY},
            "ExpressionAttributeValues": {":day": {"S": day}},
            "ConsistentRead": consistent,
        }
        if projection is not None:
            arguments["ProjectionExpression"] = projection
            arguments["ExpressionAttributeNames"]["#entry"] = KEY_ENTRY
        while True:
            page = self._client.query(**arguments)
            for item in page.get("Items", []):
                yield from_attributes(item)
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            arguments["ExclusiveStartKey"] = last

    def _entry_keys(self, day: str) -> list[str]:
        return [
            str(item[KEY_ENTRY])
            for item in self._query(day, projection="#entry")
            if item[KEY_ENTRY] != SUMMARY_SORT_KEY
        ]

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            self._write_chunk(requests[start : start + BATCH_WRITE_LIMIT])

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> None:
        pending: dict[str, list[dict[str, Any]]] = {self._table: chunk}
        for attempt in range(self._max_attempts):
            if attempt:
                self._sleep(min(MAX_DELAY_S, self._base_delay_s * 2 ** (attempt - 1)))
            answer = self._client.batch_write_item(RequestItems=pending)
            pending = {k: v for k, v in (answer.get("UnprocessedItems") or {}).items() if v}
            if not pending:
                return
        left = sum(len(requests) for requests in pending.values())
        raise UnprocessedItemsError(
            f"{left} of {len(chunk)} writes still unprocessed after {self._max_attempts} attempts"
        )
