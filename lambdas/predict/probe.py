"""The health probe: does the model actually answer? One synthetic record, scored for real.

The control plane says what SageMaker believes (``InService``) even while the model server in
the container is down; only an invocation tells. The probe record is built from the encounter
contract (every non-nullable model input at its lowest valid value or first category, every
nullable one null), so it is valid for whatever model serves and describes no patient. It
carries ``contracts.serving.HEALTH_PROBE_PATIENT_KEY`` and is sent with
``HEALTH_PROBE_INFERENCE_ID`` so that data capture can tell it from patient traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from contracts.encounter import FieldKind, FieldSpec, model_input_fields
from contracts.serving import HEALTH_PROBE_PATIENT_KEY
from lambdas.predict.errors import DeadlineExceededError, EndpointThrottledError
from lambdas.predict.records import ENCOUNTER_KEY, PATIENT_KEY
from lambdas.predict.schema import Prediction

ProbeStatus = Literal["ok", "failed", "timeout", "throttled", "not_run"]
#: An open-vocabulary category value that names what the record is.
PROBE_CATEGORY = "health-probe"


@dataclass(frozen=True)
class ProbeResult:
    """What one probe found; ``failure`` (an error code or type, never a message) is for logs."""

    status: ProbeStatus
    model_version: str | None = None
    latency_ms: int | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the model answered with a prediction."""
        return self.status == "ok"


NOT_RUN = ProbeResult("not_run")


def _probe_value(spec: FieldSpec) -> Any:
    if spec.nullable:
        return None
    if spec.kind == FieldKind.NUMERIC:
        low = 0 if spec.valid_min is None else spec.valid_min
        return int(low) if spec.dtype == "int" else float(low)
    if spec.kind == FieldKind.CATEGORICAL:
        return spec.categories[0] if spec.categories else PROBE_CATEGORY
    if spec.kind == FieldKind.CODE_SEQUENCE:
        return []
    if spec.kind == FieldKind.TEXT:
        return ""
    raise ValueError(f"no probe value for field kind {spec.kind.value}")


def probe_record() -> dict[str, Any]:
    """The synthetic endpoint record the probe scores (already de-identified in form)."""
    record = {spec.name: _probe_value(spec) for spec in model_input_fields()}
    record[PATIENT_KEY] = HEALTH_PROBE_PATIENT_KEY
    record[ENCOUNTER_KEY] = None
    return record


def run_probe(
    score: Callable[[list[dict[str, Any]]], list[Prediction]],
    clock: Callable[[], float] = time.monotonic,
) -> ProbeResult:
    """Score the probe record with ``score`` (the prediction path, deadline included).

    Every failure is a result, not an exception: /health reports it instead of failing.
    """
    started = clock()
    try:
        (prediction,) = score([probe_record()])
    except DeadlineExceededError:
        return ProbeResult("timeout", failure=DeadlineExceededError.code)
    except EndpointThrottledError:
        return ProbeResult("throttled", failure=EndpointThrottledError.code)
    except Exception as error:  # an outage, a broken answer, or a bug: the model did not answer
        return ProbeResult("failed", failure=getattr(error, "code", type(error).__name__))
    latency_ms = round((clock() - started) * 1000)
    return ProbeResult("ok", prediction.model_version, latency_ms)
