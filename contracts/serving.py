"""The wire contract between the prediction API, the endpoint and the drift monitor.

Requests to the endpoint are ``{"instances": [record, ...]}`` where each record is a canonical
encounter (contracts.encounter) carrying ``patient_key``/``encounter_key`` hashes instead of raw
identifiers. Responses are ``{"predictions": [prediction, ...]}`` in the same order.
"""

from __future__ import annotations

from contracts import encounter

CONTENT_TYPE_JSON = "application/json"
#: Batch Transform's wire format (SplitType=Line, BatchStrategy=MultiRecord, AssembleWith=Line):
#: a request holds one encounter per line, the answer one prediction or error per line, in order.
CONTENT_TYPE_JSONLINES = "application/jsonlines"
#: Key of a JSON-lines answer line for a record that could not be scored (with ``message``).
LINE_ERROR = "error"
LINE_ERROR_MESSAGE = "message"
#: Largest mini-batch nightly scoring lets Batch Transform post (``MaxPayloadInMB``), in MB:
#: well under the container's 6 MiB request limit, and small enough (about 1,000 records) that
#: a day of a few thousand discharges is several requests, spread over every server worker.
BATCH_MAX_PAYLOAD_MB = 1

#: Largest batch the API accepts in one request (larger: HTTP 413).
MAX_BATCH_SIZE = 100

#: Largest request body the API accepts, in bytes (API Gateway allows 10 MB; notes are long).
MAX_BODY_BYTES = 1_000_000

INSTANCES_KEY = "instances"
PREDICTIONS_KEY = "predictions"

# The caller's raw identifiers in an API request: the predict Lambda replaces them with
# ``encounter_key`` (contracts.deidentify) before the endpoint; the endpoint refuses them.
PATIENT_ID = "patient_id"
ENCOUNTER_ID = "encounter_id"
RAW_IDENTIFIER_FIELDS = (PATIENT_ID, ENCOUNTER_ID)

# Keys of one prediction.
ENCOUNTER_KEY = encounter.ENCOUNTER_KEY
#: Each endpoint record's de-identified patient (the predict Lambda adds it; captures keep it).
PATIENT_KEY = encounter.PATIENT_KEY
PROBABILITY = "probability"
RISK_BAND = "risk_band"
MODEL_VERSION = "model_version"
TOP_FACTORS = "top_factors"

# Keys of one contributing factor.
FACTOR_FEATURE = "feature"
FACTOR_DIRECTION = "direction"
FACTOR_CONTRIBUTION = "contribution"
DIRECTION_INCREASES = "increases_risk"
DIRECTION_DECREASES = "decreases_risk"

RISK_BANDS = ("low", "moderate", "high")

#: ``moderate`` starts at this fraction of the model's decision threshold.
MODERATE_BAND_FRACTION = 0.5

#: Tags the deployer puts on the endpoint config so that /health can name the serving model.
TAG_MODEL_VERSION = "readmission:model-version"
TAG_MODEL_PACKAGE_ARN = "readmission:model-package-arn"


def risk_band(probability: float, threshold: float) -> str:
    """Return the risk band of a calibrated probability under the model's decision threshold."""
    if probability >= threshold:
        return "high"
    if probability >= MODERATE_BAND_FRACTION * threshold:
        return "moderate"
    return "low"


# Request bounds of the prediction API, beyond contracts.encounter's valid ranges: the API
# rejects a record outside them (HTTP 400 naming the field), so the endpoint never sees one.
#: Longest raw patient or encounter identifier, in characters.
MAX_IDENTIFIER_CHARS = 128
#: Longest value of an open-vocabulary categorical field (e.g. ``admitting_service``).
MAX_CATEGORY_CHARS = 64
#: Most entries in one code sequence (diagnoses, procedures, medications, abnormal labs).
MAX_CODES_PER_SEQUENCE = 500
#: Longest single code or name in a code sequence, in characters.
MAX_CODE_CHARS = 64
#: Longest discharge note, in characters (the body limit still applies to the whole request).
MAX_NOTE_CHARS = 200_000

# The prediction API's health probe: one synthetic, non-patient record scored through the same
# call path as a prediction, at most once per HEALTH_CACHE_TTL_S per Lambda container. It is
# labelled twice so that captured probe traffic can be told from patients' (data capture
# records InvokeEndpoint's InferenceId with the request): consumers of the capture, such as the
# drift monitor, skip records carrying either label.
#: ``InferenceId`` of every probe invocation.
HEALTH_PROBE_INFERENCE_ID = "readmission-health-probe"
#: ``patient_key`` of the probe record: 64 hex digits as a keyed hash has, namely
#: sha256(b"readmission-platform/health-probe"), a plain hash no HMAC of an identifier will give.
HEALTH_PROBE_PATIENT_KEY = "5d3c641e4af8e70caeb00eed75be1488c890e10c8ea9909ae808dbd6051f8ed9"
