"""Reading the worklist table (DynamoDB) for the API: the store's reads, and which days were
scored by one BatchGetItem of the days' summary items.

A day's items (Query) and one item (GetItem) are read by ``worklist.dynamodb``'s store, the
one nightly batch scoring writes with, so reader and writer share one item format; what is
new here is :meth:`DynamoDbWorklistReader.scored_days`. Read-only on purpose: the function's
role is granted read access only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from contracts.worklist import KEY_DAY, KEY_ENTRY, SUMMARY_SORT_KEY
from worklist.dynamodb import DynamoDbWorklistStore, from_attributes

#: BatchGetItem's limit on keys per request.
BATCH_GET_MAX_KEYS = 100


class DynamoDbWorklistReader(DynamoDbWorklistStore):
    """The worklist table, read through a boto3 DynamoDB client passed in (eventually
    consistent: a day is written hours before anyone reads it)."""

    def __init__(self, table_name: str, client: Any) -> None:
        super().__init__(client, table_name, consistent_reads=False)

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
                    str(from_attributes(item)[KEY_DAY])
                    for item in answer["Responses"].get(self._table, [])
                )
                request = answer.get("UnprocessedKeys") or {}
        return sorted(found, reverse=True)


def recent_days(today: dt.date, window_days: int) -> list[str]:
    """``today`` (plus tomorrow, for a hospital ahead of UTC) back ``window_days`` days."""
    first = today + dt.timedelta(days=1)
    return [(first - dt.timedelta(days=n)).isoformat() for n in range(window_days + 2)]
