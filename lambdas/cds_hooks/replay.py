"""Single use of a CDS client's JWT ``jti``: remembered until the token expires.

The authorizer's answers are cached by API Gateway (keyed on the token), so a replayed token
may never reach the authorizer again; the service itself claims each ``jti`` on every call,
with a conditional write that fails when the ``jti`` is already there. In AWS the store is a
DynamoDB table with TTL on ``expires_at``
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html,
``attribute_not_exists``); locally, and in tests, a dictionary.
"""

from __future__ import annotations

import heapq
import threading
import time
from typing import Any, Protocol

from botocore.exceptions import ClientError

from lambdas.cds_hooks.service import EXPIRES_ATTRIBUTE, JTI_ATTRIBUTE

CONDITION_FAILED = "ConditionalCheckFailedException"


class ReplayCache(Protocol):
    """Claims a ``jti`` once."""

    def claim(self, jti: str, expires_at: int) -> bool:
        """True the first time ``jti`` is claimed before ``expires_at``; False after."""
        ...


class MemoryReplayCache:
    """A replay cache for one process (the local platform and the tests).

    A claim costs O(log n) in the ``jti``s held, not O(n): expired ones are dropped from the
    front of a heap ordered by expiry, instead of the whole set being rebuilt on every call.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._expiries: list[tuple[int, str]] = []  # a heap: the soonest expiry first
        self._lock = threading.Lock()

    def claim(self, jti: str, expires_at: int) -> bool:
        now = time.time()
        with self._lock:
            while self._expiries and self._expiries[0][0] < now:
                expiry, old = heapq.heappop(self._expiries)
                if self._seen.get(old) == expiry:
                    del self._seen[old]
            if jti in self._seen:
                return False
            self._seen[jti] = expires_at
            heapq.heappush(self._expiries, (expires_at, jti))
            return True

    def __len__(self) -> int:
        """How many ``jti``s are held (expired ones go at the next claim)."""
        return len(self._seen)


class DynamoDbReplayCache:
    """A replay cache in a DynamoDB table keyed on ``jti`` with TTL on ``expires_at``.

    DynamoDB's TTL deletes expired items within days, not at once; an item past its
    ``expires_at`` is still there, which only refuses a token that has expired anyway.
    """

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def claim(self, jti: str, expires_at: int) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={JTI_ATTRIBUTE: {"S": jti}, EXPIRES_ATTRIBUTE: {"N": str(expires_at)}},
                ConditionExpression="attribute_not_exists(#jti)",
                ExpressionAttributeNames={"#jti": JTI_ATTRIBUTE},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == CONDITION_FAILED:
                return False
            raise
        return True
