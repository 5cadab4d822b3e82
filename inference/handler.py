"""The SageMaker PyTorch serving hooks over the model directory that training writes.

The container calls ``model_fn`` once, then ``input_fn -> predict_fn -> output_fn`` per
request; the local endpoint server (``inference.serve``) calls the same four. Each hook hands
off to a small unit: ``payload`` (wire format), ``predictor`` (scoring), ``attribution``
(top factors). Errors are ``inference.errors`` types carrying their HTTP status; a record that
cannot be scored is a 400 naming the field, never its value.

The toolkit counts each hook's parameters to decide whether to pass a context, so the
signatures below must keep exactly these parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inference.allocator import retain_freed_memory
from inference.lines import (
    LineAnswers,
    LineBatch,
    is_jsonlines,
    lines_body,
    parse_lines,
    predict_lines,
)
from inference.payload import EncounterBatch, parse_request, response_body
from inference.predictor import ServingModel, as_batch, load_serving_model, predict

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]


def model_fn(model_dir: str) -> ServingModel:
    """Load the encoder, the model (in eval mode), calibration, threshold and version once.

    Also keeps freed buffers in the heap between requests (``inference.allocator``).
    """
    retain_freed_memory()
    return load_serving_model(model_dir)


def input_fn(request_body: bytes | str, request_content_type: str) -> EncounterBatch | LineBatch:
    """Decode ``application/json`` (one encounter, a list, or ``{"instances": [...]}``) or
    ``application/jsonlines`` (Batch Transform's mini-batches: one encounter per line)."""
    if is_jsonlines(request_content_type):
        return parse_lines(request_body, request_content_type)
    return parse_request(request_body, request_content_type)


def predict_fn(
    input_data: EncounterBatch | LineBatch | Sequence[Mapping[str, Any]], model: ServingModel
) -> list[dict[str, Any]]:
    """Score under ``torch.inference_mode``: calibrated probability, band, version, factors."""
    if isinstance(input_data, LineBatch):
        return predict_lines(model, input_data)
    return predict(model, as_batch(input_data))


def output_fn(prediction: list[dict[str, Any]], accept: str) -> tuple[str, str]:
    """Return ``{"predictions": [...]}`` as ``application/json``, or the answers to a JSON-lines
    request one per line as ``application/jsonlines``."""
    if isinstance(prediction, LineAnswers):
        return lines_body(prediction, accept)
    return response_body(prediction, accept)
