"""A parsed request prints none of its content.

Powertools formats each route's validated arguments into a debug line on every call
(``_registered_api_adapter``), whether or not debug logging is on, so a request model's
default repr would carry the raw patient and encounter identifiers (and the clinical values)
into the log the moment someone turns debug logging on.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from lambdas.predict.schema import PredictRequest
from lambdas.predict.validation import parse_body
from tests.lambdas.predict_fixtures import valid_record

LIMIT = 1_000_000
SECRETS = ("MRN-0042", "ADM-9001", "4280", "cardiology", "home_health")


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_request_repr_and_str_carry_no_field(batch: bool) -> None:
    record = valid_record()
    body = {"instances": [record, valid_record(patient_id="MRN-0043")]} if batch else record
    request = cast(Any, parse_body(json.dumps(body), PredictRequest, LIMIT))
    for text in (repr(request), str(request), f"{request!r}", repr(request.root)):
        for secret in SECRETS:
            assert secret not in text
    # The model is still the real one: the values are there to be read.
    first = request.root.instances[0] if batch else request.root
    assert first.patient_id == "MRN-0042"
