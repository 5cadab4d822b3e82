"""The training baseline and the population stability index (PSI) used to watch for drift.

Training calls :func:`build_baseline` on the training split and its scores and saves the result
as ``drift_baseline.json`` in the model directory. The deployer copies that file to
``s3://<capture bucket>/<baseline_s3_key(endpoint)>``; the drift-monitor Lambda streams captured
requests through a :class:`DriftAccumulator` built from it and publishes the PSI per feature.

Buckets, per kind of field (``contracts.encounter``):

* numeric: ~10 right-closed quantile bins of the training values, ``(-inf, c1], (c1, c2], ...,
  (ck, +inf)``, plus a null bucket. Cut point ``c_q`` is the nearest-rank quantile, the value at
  1-based rank ``ceil(q * n / bins)`` of the sorted non-null training values; repeated cut points
  are merged, so a count that is mostly zero gets fewer, wider bins.
* categorical: one bucket per category (the contract's closed vocabulary, or the top-K training
  categories of an open one), then ``__other__`` and ``__null__``.
* code sequence: one bucket per code group among the top-K training groups, then ``__other__``
  and ``__empty__`` (a record with no codes). A record adds one count per distinct group it holds.
  Diagnoses and procedures group by the clinical group both coding eras share
  (``contracts.grouping``; contract 2.0): ``4280`` and ``icd10cm:I509`` both count under
  ``CCSR:CIR019``, so a day whose coding switches from ICD-9 to ICD-10 with the same patient mix
  keeps its buckets while a real case-mix shift moves them; a code without a group counts under
  its own tagged form. Baselines of contract 1.x name the ICD-9 categories
  (``icd9_diagnosis_category``: the first 3 characters, 4 for an E code;
  ``icd9_procedure_category``: the first 2 digits) and keep them: a tagged ICD-9 code loses
  its tag, an ICD-10-CM diagnosis goes back to ICD-9-CM through the GEMs first. Medications
  and lab names group by their lower-cased name.
* prediction score: fixed bins ``[0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]``.

PSI of expected shares ``e_i`` (training) and actual shares ``a_i`` (window), each share floored
at ``epsilon`` so that an empty bucket does not give an infinite value::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

Rule of thumb: below 0.1 stable, 0.1 to 0.2 a moderate shift, above 0.2 a shift worth acting on
(:data:`PSI_ALARM_THRESHOLD`). Stdlib only, so training, the Lambda and tests share it unchanged.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from contracts import codes
from contracts import grouping as clinical_grouping
from contracts.encounter import SCHEMA_VERSION, FieldKind, FieldSpec, model_input_fields

BASELINE_FORMAT_VERSION = 1

#: File name of the baseline inside the model directory (and so inside model.tar.gz).
BASELINE_FILE_NAME = "drift_baseline.json"

#: PSI above this raises the drift alarms; between the warning and the alarm: watch.
PSI_ALARM_THRESHOLD = 0.2
PSI_WARNING_THRESHOLD = 0.1

#: Floor of a bucket share in the PSI formula (an empty bucket would give ln(0)).
DEFAULT_EPSILON = 1e-4

NUMERIC_BIN_COUNT = 10
SCORE_BIN_COUNT = 10
CATEGORY_TOP_K = 50
CODE_GROUP_TOP_K = 50

OTHER_BUCKET = "__other__"
NULL_BUCKET = "__null__"
EMPTY_BUCKET = "__empty__"

#: Key of the prediction score's PSI in :meth:`DriftAccumulator.psi`.
PREDICTION_SCORE = "prediction_score"
#: Count keys in :meth:`DriftAccumulator.psi` (records added; records that carried a score).
RECORD_COUNT = "record_count"
SCORE_COUNT = "score_count"

#: CloudWatch names the drift monitor publishes and the Monitoring stack's alarms watch. Every
#: metric carries the dimension ``EndpointName``; the per-feature PSI also ``Feature``.
DEFAULT_METRIC_NAMESPACE = "ReadmissionPlatform/Drift"
DIMENSION_ENDPOINT = "EndpointName"
DIMENSION_FEATURE = "Feature"
METRIC_FEATURE_PSI = "FeaturePSI"
METRIC_MAX_FEATURE_PSI = "MaxFeaturePSI"
METRIC_PREDICTION_PSI = "PredictionPSI"
METRIC_DRIFTED_FEATURES = "DriftedFeatures"
METRIC_RECORDS_ANALYSED = "RecordsAnalysed"
METRIC_CORRUPT_RECORDS = "CorruptRecords"
METRIC_EMPTY_WINDOW = "EmptyWindow"
METRIC_TRUNCATED_WINDOW = "TruncatedWindow"
METRIC_REALISED_AUROC = "RealisedAUROC"
METRIC_CALIBRATION_ERROR = "ExpectedCalibrationError"
METRIC_MEAN_PREDICTED_RISK = "MeanPredictedRisk"
METRIC_OBSERVED_READMISSION_RATE = "ObservedReadmissionRate"
METRIC_LABELLED_RECORDS = "LabelledRecords"

GROUPING_ICD9_DIAGNOSIS = "icd9_diagnosis_category"
GROUPING_ICD9_PROCEDURE = "icd9_procedure_category"
GROUPING_CLINICAL_DIAGNOSIS = "clinical_diagnosis_group"
GROUPING_CLINICAL_PROCEDURE = "clinical_procedure_group"
GROUPING_NAME = "name"
#: The code-sequence field each coded grouping reads its entries as (an untagged entry is that
#: field's legacy ICD-9 system).
_GROUPING_FIELDS: Mapping[str, str] = {
    GROUPING_ICD9_DIAGNOSIS: "diagnosis_codes",
    GROUPING_CLINICAL_DIAGNOSIS: "diagnosis_codes",
    GROUPING_ICD9_PROCEDURE: "procedure_codes",
    GROUPING_CLINICAL_PROCEDURE: "procedure_codes",
}
GROUPINGS = frozenset({*_GROUPING_FIELDS, GROUPING_NAME})

#: How each code-sequence field's codes are grouped; a field not listed groups by name.
CODE_GROUPINGS: Mapping[str, str] = {
    "diagnosis_codes": GROUPING_CLINICAL_DIAGNOSIS,
    "procedure_codes": GROUPING_CLINICAL_PROCEDURE,
    "medications": GROUPING_NAME,
    "abnormal_labs": GROUPING_NAME,
}


class DriftInputError(ValueError):
    """A record or score cannot be bucketed; the message names the field, never the value."""


class BaselineError(ValueError):
    """A baseline document is malformed; the message names the part that is wrong."""


def baseline_s3_key(endpoint_name: str) -> str:
    """Return the key, in the capture bucket, of the baseline of the model an endpoint serves."""
    return f"baselines/{endpoint_name}/{BASELINE_FILE_NAME}"


def code_group(code: str, grouping: str) -> str:
    """Return the group a code counts under (see the module docstring for the rules)."""
    field_name = _GROUPING_FIELDS.get(grouping)
    if not code.strip():
        return ""
    if field_name is None:
        return code.strip().replace(".", "").lower()
    try:
        parsed = codes.parse(field_name, code, strict=False)
    except codes.CodeError:
        return code.strip().replace(".", "").upper()  # unparseable: counts under other
    if grouping in (GROUPING_CLINICAL_DIAGNOSIS, GROUPING_CLINICAL_PROCEDURE):
        return clinical_grouping.group(parsed) or parsed.tagged
    legacy = clinical_grouping.to_icd9cm(parsed) if field_name == "diagnosis_codes" else parsed
    if legacy is None or legacy.system is not codes.LEGACY_SYSTEM[field_name]:
        return parsed.tagged
    return clinical_grouping.icd9_category(field_name, legacy.code) or legacy.code


def population_stability_index(
    expected: Sequence[float], actual: Sequence[float], epsilon: float = DEFAULT_EPSILON
) -> float:
    """Return the PSI of two bucket distributions given as counts or shares.

    Each side is normalised to shares summing to 1, each share is floored at ``epsilon`` and
    the result is ``sum((a - e) * ln(a / e))``; 0 means identical distributions.
    """
    if len(expected) != len(actual):
        raise ValueError("expected and actual must have the same number of buckets")
    if not expected:
        raise ValueError("at least one bucket is needed")
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    if any(value < 0 or not math.isfinite(value) for value in (*expected, *actual)):
        raise ValueError("bucket values must be finite and non-negative")
    expected_total = math.fsum(expected)
    actual_total = math.fsum(actual)
    if expected_total <= 0 or actual_total <= 0:
        raise ValueError("each distribution needs a positive total")
    psi = 0.0
    for expected_value, actual_value in zip(expected, actual, strict=True):
        expected_share = max(expected_value / expected_total, epsilon)
        actual_share = max(actual_value / actual_total, epsilon)
        psi += (actual_share - expected_share) * math.log(actual_share / expected_share)
    return psi


def score_bin_edges() -> list[float]:
    """Return the interior edges of the fixed score bins on [0, 1]."""
    return [index / SCORE_BIN_COUNT for index in range(1, SCORE_BIN_COUNT)]


def quantile_cut_points(values: Sequence[float], bins: int = NUMERIC_BIN_COUNT) -> list[float]:
    """Return the distinct nearest-rank quantile cut points splitting ``values`` into ``bins``."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    ordered = sorted(values)
    count = len(ordered)
    if count == 0:
        return []
    cuts: list[float] = []
    for step in range(1, bins):
        rank = math.ceil(step * count / bins)
        value = float(ordered[max(rank, 1) - 1])
        if not cuts or value > cuts[-1]:
            cuts.append(value)
    # A cut at the maximum would leave the last bin empty by construction.
    if cuts and cuts[-1] >= float(ordered[-1]):
        cuts.pop()
    return cuts


def _numeric_value(spec_name: str, value: Any) -> float | None:
    """Return a finite float, ``None`` for a null, or raise naming the field."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DriftInputError(f"field '{spec_name}' must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise DriftInputError(f"field '{spec_name}' must be a finite number")
    return number


def _categorical_value(spec_name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise DriftInputError(f"field '{spec_name}' must be a string")
    return value


def _code_groups(spec_name: str, value: Any, grouping: str) -> set[str]:
    if value is None:
        return set()
    if not isinstance(value, list | tuple):
        raise DriftInputError(f"field '{spec_name}' must be a list of strings")
    groups: set[str] = set()
    for code in value:
        if not isinstance(code, str):
            raise DriftInputError(f"field '{spec_name}' must be a list of strings")
        group = code_group(code, grouping)
        if group:
            groups.add(group)
    return groups


def _score_value(score: Any) -> float:
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise DriftInputError(f"'{PREDICTION_SCORE}' must be a number")
    number = float(score)
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise DriftInputError(f"'{PREDICTION_SCORE}' must lie in [0, 1]")
    return number


def _top_k(counter: Counter[str], top_k: int) -> list[str]:
    """Return the ``top_k`` most frequent keys, ties broken by name for a stable baseline."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [key for key, _ in ranked[:top_k]]


def drift_fields() -> tuple[FieldSpec, ...]:
    """Return the model-input fields that get a PSI (free text has no stable buckets)."""
    kinds = (FieldKind.NUMERIC, FieldKind.CATEGORICAL, FieldKind.CODE_SEQUENCE)
    return tuple(spec for spec in model_input_fields() if spec.kind in kinds)


def _numeric_feature(values: Sequence[float], nulls: int, bins: int) -> dict[str, Any]:
    edges = quantile_cut_points(values, bins)
    counts = [0] * (len(edges) + 1)
    for number in values:
        counts[bisect_left(edges, number)] += 1
    return {"kind": FieldKind.NUMERIC.value, "edges": edges, "counts": [*counts, nulls]}


def _categorical_feature(spec: FieldSpec, counter: Counter[str], top_k: int) -> dict[str, Any]:
    observed = Counter({k: v for k, v in counter.items() if k != NULL_BUCKET})
    categories = list(spec.categories) if spec.categories is not None else _top_k(observed, top_k)
    kept = set(categories)
    other = sum(v for k, v in observed.items() if k not in kept)
    return {
        "kind": FieldKind.CATEGORICAL.value,
        "buckets": [*categories, OTHER_BUCKET, NULL_BUCKET],
        "counts": [*(counter[c] for c in categories), other, counter[NULL_BUCKET]],
    }


def _code_sequence_feature(spec: FieldSpec, counter: Counter[str], top_k: int) -> dict[str, Any]:
    observed = Counter({k: v for k, v in counter.items() if k != EMPTY_BUCKET})
    top_groups = _top_k(observed, top_k)
    kept = set(top_groups)
    other = sum(v for k, v in observed.items() if k not in kept)
    return {
        "kind": FieldKind.CODE_SEQUENCE.value,
        "grouping": CODE_GROUPINGS.get(spec.name, GROUPING_NAME),
        "buckets": [*top_groups, OTHER_BUCKET, EMPTY_BUCKET],
        "counts": [*(counter[g] for g in top_groups), other, counter[EMPTY_BUCKET]],
    }


def build_baseline(
    records: Iterable[Mapping[str, Any]],
    scores: Sequence[float],
    *,
    numeric_bins: int = NUMERIC_BIN_COUNT,
    category_top_k: int = CATEGORY_TOP_K,
    code_group_top_k: int = CODE_GROUP_TOP_K,
) -> dict[str, Any]:
    """Return the JSON-serialisable training baseline of ``records`` and their model ``scores``.

    ``scores`` are the model's probabilities on the same records (any order: only their
    distribution is kept). Raises :class:`DriftInputError` naming a field of the wrong type.
    """
    fields = drift_fields()
    numeric_values: dict[str, list[float]] = {
        spec.name: [] for spec in fields if spec.kind == FieldKind.NUMERIC
    }
    null_counts: Counter[str] = Counter()
    category_counts: dict[str, Counter[str]] = {
        spec.name: Counter() for spec in fields if spec.kind == FieldKind.CATEGORICAL
    }
    group_counts: dict[str, Counter[str]] = {
        spec.name: Counter() for spec in fields if spec.kind == FieldKind.CODE_SEQUENCE
    }
    record_count = 0
    for record in records:
        record_count += 1
        for spec in fields:
            value = record.get(spec.name)
            if spec.kind == FieldKind.NUMERIC:
                number = _numeric_value(spec.name, value)
                if number is None:
                    null_counts[spec.name] += 1
                else:
                    numeric_values[spec.name].append(number)
            elif spec.kind == FieldKind.CATEGORICAL:
                category = _categorical_value(spec.name, value)
                category_counts[spec.name][NULL_BUCKET if category is None else category] += 1
            else:
                grouping = CODE_GROUPINGS.get(spec.name, GROUPING_NAME)
                groups = _code_groups(spec.name, value, grouping)
                group_counts[spec.name].update(groups or {EMPTY_BUCKET})
    if record_count == 0:
        raise ValueError("a baseline needs at least one training record")

    features: dict[str, Any] = {}
    for spec in fields:
        if spec.kind == FieldKind.NUMERIC:
            features[spec.name] = _numeric_feature(
                numeric_values[spec.name], null_counts[spec.name], numeric_bins
            )
        elif spec.kind == FieldKind.CATEGORICAL:
            features[spec.name] = _categorical_feature(
                spec, category_counts[spec.name], category_top_k
            )
        else:
            features[spec.name] = _code_sequence_feature(
                spec, group_counts[spec.name], code_group_top_k
            )

    score_edges = score_bin_edges()
    score_counts = [0] * SCORE_BIN_COUNT
    for score in scores:
        score_counts[bisect_right(score_edges, _score_value(score))] += 1
    return {
        "format_version": BASELINE_FORMAT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "record_count": record_count,
        "features": features,
        PREDICTION_SCORE: {"edges": score_edges, "counts": score_counts},
    }


class _NumericBinner:
    """Maps a number to its quantile bin; the last bucket holds nulls."""

    def __init__(self, name: str, edges: Sequence[float]) -> None:
        self.name = name
        self.edges = list(edges)
        self.size = len(self.edges) + 2
        self.null = self.size - 1

    def bucket(self, value: Any) -> int:
        # Exact type checks: the hot path of the drift monitor, and bool must not pass as int.
        kind = type(value)
        if kind is int or (kind is float and math.isfinite(value)):
            return bisect_left(self.edges, value)
        number = _numeric_value(self.name, value)
        return self.null if number is None else bisect_left(self.edges, number)


class _CategoricalBinner:
    """Maps a category to its bucket; the last two buckets are other and null."""

    def __init__(self, name: str, buckets: Sequence[str]) -> None:
        self.name = name
        self.size = len(buckets)
        self.index = {label: i for i, label in enumerate(buckets[:-2])}
        self.other = self.size - 2
        self.null = self.size - 1

    def bucket(self, value: Any) -> int:
        if type(value) is str:
            return self.index.get(value, self.other)
        if value is None:
            return self.null
        _categorical_value(self.name, value)
        return self.index.get(value, self.other)


#: Distinct codes whose group is remembered per feature; bounds memory on any volume.
CODE_GROUP_CACHE_SIZE = 100_000


class _CodeSequenceBinner:
    """Maps a code list to one bucket per distinct group; the last two are other and empty."""

    def __init__(self, name: str, buckets: Sequence[str], grouping: str) -> None:
        self.name = name
        self.grouping = grouping
        self.size = len(buckets)
        self.index = {label: i for i, label in enumerate(buckets[:-2])}
        self.other = self.size - 2
        self.empty = self.size - 1
        self._groups: dict[str, str] = {}

    def buckets(self, value: Any) -> list[int]:
        if not value:
            if value is None or type(value) in (list, tuple):
                return [self.empty]
            raise DriftInputError(f"field '{self.name}' must be a list of strings")
        if type(value) is not list and not isinstance(value, list | tuple):
            raise DriftInputError(f"field '{self.name}' must be a list of strings")
        cache = self._groups
        groups: set[str] = set()
        for code in value:
            group = cache.get(code) if type(code) is str else None
            if group is None:
                if not isinstance(code, str):
                    raise DriftInputError(f"field '{self.name}' must be a list of strings")
                group = code_group(code, self.grouping)
                if len(cache) < CODE_GROUP_CACHE_SIZE:
                    cache[code] = group
            if group:
                groups.add(group)
        if not groups:
            return [self.empty]
        index, other = self.index, self.other
        return [index.get(group, other) for group in groups]


_Binner = _NumericBinner | _CategoricalBinner | _CodeSequenceBinner


def _counts(spec: Mapping[str, Any], part: str, size: int) -> list[int]:
    counts = spec.get("counts")
    if not isinstance(counts, list) or len(counts) != size:
        raise BaselineError(f"baseline '{part}' has counts of the wrong length")
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
        raise BaselineError(f"baseline '{part}' counts must be non-negative integers")
    return counts


def _string_list(spec: Mapping[str, Any], key: str, part: str) -> list[str]:
    values = spec.get(key)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BaselineError(f"baseline '{part}' needs a list of strings under '{key}'")
    return values


def _number_list(spec: Mapping[str, Any], key: str, part: str) -> list[float]:
    values = spec.get(key)
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise BaselineError(f"baseline '{part}' needs a list of numbers under '{key}'")
    if any(b <= a for a, b in pairwise(values)):
        raise BaselineError(f"baseline '{part}' edges must increase")
    return [float(v) for v in values]


def _binner(name: str, spec: Any) -> tuple[_Binner, list[int]]:
    if not isinstance(spec, Mapping):
        raise BaselineError(f"baseline feature '{name}' must be an object")
    kind = spec.get("kind")
    binner: _Binner
    if kind == FieldKind.NUMERIC.value:
        binner = _NumericBinner(name, _number_list(spec, "edges", name))
    elif kind == FieldKind.CATEGORICAL.value:
        labels = _string_list(spec, "buckets", name)
        if labels[-2:] != [OTHER_BUCKET, NULL_BUCKET]:
            raise BaselineError(f"baseline feature '{name}' must end with other and null")
        binner = _CategoricalBinner(name, labels)
    elif kind == FieldKind.CODE_SEQUENCE.value:
        labels = _string_list(spec, "buckets", name)
        if labels[-2:] != [OTHER_BUCKET, EMPTY_BUCKET]:
            raise BaselineError(f"baseline feature '{name}' must end with other and empty")
        grouping = spec.get("grouping", GROUPING_NAME)
        if grouping not in GROUPINGS:
            raise BaselineError(f"baseline feature '{name}' has an unknown grouping")
        binner = _CodeSequenceBinner(name, labels, grouping)
    else:
        raise BaselineError(f"baseline feature '{name}' has an unknown kind")
    counts = _counts(spec, name, binner.size)
    if sum(counts) == 0:
        raise BaselineError(f"baseline feature '{name}' has no counts")
    return binner, counts


class DriftAccumulator:
    """Streams window records and scores into bucket counts, in memory independent of volume.

    Built from a baseline document; :meth:`add` validates the whole record before counting it,
    so a rejected record leaves the counts untouched.
    """

    def __init__(self, baseline: Mapping[str, Any]) -> None:
        if baseline.get("format_version") != BASELINE_FORMAT_VERSION:
            raise BaselineError("baseline 'format_version' is not supported")
        features = baseline.get("features")
        if not isinstance(features, Mapping) or not features:
            raise BaselineError("baseline 'features' must be a non-empty object")
        self._binners: list[_Binner] = []
        self._expected: dict[str, list[int]] = {}
        for name, spec in features.items():
            binner, counts = _binner(str(name), spec)
            self._binners.append(binner)
            self._expected[binner.name] = counts
        score_spec = baseline.get(PREDICTION_SCORE)
        if not isinstance(score_spec, Mapping):
            raise BaselineError(f"baseline '{PREDICTION_SCORE}' must be an object")
        self._score_edges = _number_list(score_spec, "edges", PREDICTION_SCORE)
        self._expected_scores = _counts(score_spec, PREDICTION_SCORE, len(self._score_edges) + 1)
        self._actual: dict[str, list[int]] = {
            binner.name: [0] * binner.size for binner in self._binners
        }
        self._actual_scores = [0] * len(self._expected_scores)
        self._single = [b for b in self._binners if not isinstance(b, _CodeSequenceBinner)]
        self._multi = [b for b in self._binners if isinstance(b, _CodeSequenceBinner)]
        self._single_counts = [self._actual[b.name] for b in self._single]
        self._multi_counts = [self._actual[b.name] for b in self._multi]
        self.record_count = 0
        self.score_count = 0

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the features the baseline covers, in baseline order."""
        return tuple(binner.name for binner in self._binners)

    def add(self, record: Mapping[str, Any], score: float | None = None) -> None:
        """Count one record (a missing field counts as null) and, if given, its score."""
        get = record.get
        single = [binner.bucket(get(binner.name)) for binner in self._single]
        multi = [binner.buckets(get(binner.name)) for binner in self._multi]
        score_bucket = (
            None if score is None else bisect_right(self._score_edges, _score_value(score))
        )
        for counts, index in zip(self._single_counts, single, strict=True):
            counts[index] += 1
        for counts, indexes in zip(self._multi_counts, multi, strict=True):
            for index in indexes:
                counts[index] += 1
        self.record_count += 1
        if score_bucket is not None:
            self._actual_scores[score_bucket] += 1
            self.score_count += 1

    def actual_counts(self, name: str) -> list[int]:
        """Return a copy of the window's bucket counts of a feature or of the score."""
        if name == PREDICTION_SCORE:
            return list(self._actual_scores)
        return list(self._actual[name])

    def psi(self, epsilon: float = DEFAULT_EPSILON) -> dict[str, float]:
        """Return ``{feature: psi, "prediction_score": psi, "record_count", "score_count"}``.

        A PSI is left out where the window has nothing to compare (no records; no scores).
        """
        result: dict[str, float] = {}
        if self.record_count:
            for name, expected in self._expected.items():
                result[name] = population_stability_index(expected, self._actual[name], epsilon)
        if self.score_count and sum(self._expected_scores):
            result[PREDICTION_SCORE] = population_stability_index(
                self._expected_scores, self._actual_scores, epsilon
            )
        result[RECORD_COUNT] = self.record_count
        result[SCORE_COUNT] = self.score_count
        return result
