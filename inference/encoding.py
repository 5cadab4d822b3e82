"""Feature encoding shared by training and serving: records in, numpy arrays out.

Training rows (``pyarrow.Table.to_pylist()``) and online JSON requests go through the same
``FeatureEncoder.encode`` so that the model sees identical inputs in both places. Every
statistic and vocabulary is fitted on the training split only and saved as JSON next to the
weights. Missing or unknown inputs are imputed or mapped to UNK; a value that cannot be read
at all raises ``UnscorableRecordError`` naming the field, never echoing the value.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contracts import codes, grouping
from contracts.codes import LEGACY_SYSTEM
from contracts.encounter import SCHEMA_VERSION, FieldKind, FieldSpec, model_input_fields
from contracts.model_artifact import ENCODER_FILE, NOTES_TOKENIZER_FILE

PAD_TOKEN = "[PAD]"  # noqa: S105 (a vocabulary token, not a secret)
UNK_TOKEN = "[UNK]"  # noqa: S105 (a vocabulary token, not a secret)
CLS_TOKEN = "[CLS]"  # noqa: S105 (a vocabulary token, not a secret)
SEP_TOKEN = "[SEP]"  # noqa: S105 (a vocabulary token, not a secret)
MASK_TOKEN = "[MASK]"  # noqa: S105 (a vocabulary token, not a secret)
SPECIAL_CODE_TOKENS = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN)
PAD_ID = 0
#: Characters of a note tokenized per kept token (notes are cut to ``note_max_length`` tokens):
#: English clinical prose averages 4-6 characters per WordPiece token, spaces included, so a
#: prefix this long nearly always holds the kept tokens; when it does not, the whole note is
#: tokenized (``_prefix_suffices``).
NOTE_PREFIX_CHARS_PER_TOKEN = 8
UNK_ID = 1
CLS_ID = 2

#: Categorical index reserved for unknown, unseen or missing values.
CATEGORY_UNK_ID = 0

#: Token-type id of the leading [CLS] token; code fields follow from 1 in this order.
CLS_TYPE_ID = 0

#: Prefix of each code field's tokens, so that equal strings in two fields stay distinct.
CODE_FIELD_PREFIXES: dict[str, str] = {
    "diagnosis_codes": "dx",
    "procedure_codes": "px",
    "medications": "rx",
    "abnormal_labs": "lab",
}

#: Skewed counts and durations: standardised after ``log1p``.
LOG1P_FIELDS = frozenset(
    {
        "length_of_stay_days",
        "prior_admissions_12m",
        "prior_ed_visits_12m",
        "prior_outpatient_visits_12m",
        "days_since_last_discharge",
        "prior_encounters_on_record",
        "prior_readmissions_30d_on_record",
        "num_diagnoses",
        "num_procedures",
        "num_medications",
        "num_lab_tests",
        "num_abnormal_labs",
    }
)

NOTE_FIELD = "note_text"

#: Standard deviations below this are treated as constant columns (scale 1).
_MIN_STD = 1e-6
#: The largest finite float: an integer beyond it (JSON allows any) has no float value.
_LARGEST_FLOAT = sys.float_info.max


class UnscorableRecordError(ValueError):
    """A record cannot be encoded; ``field`` names the culprit, the value is never shown."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field '{field}': {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class EncoderConfig:
    """Knobs of the encoder, fixed at fit time and saved with it."""

    code_min_frequency: int = 5
    category_min_frequency: int = 5
    max_code_length: int = 64
    max_codes_per_field: int = 24
    note_vocab_size: int = 4000
    note_max_length: int = 256
    note_min_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.code_min_frequency < 1 or self.category_min_frequency < 1:
            raise ValueError("min frequencies must be at least 1")
        if self.max_code_length < 2 or self.max_codes_per_field < 1:
            raise ValueError("max_code_length must be >= 2 and max_codes_per_field >= 1")
        if self.note_max_length < 8 or self.note_vocab_size < 100:
            raise ValueError("note_max_length must be >= 8 and note_vocab_size >= 100")
        if not 0.0 <= self.note_min_fraction <= 1.0:
            raise ValueError("note_min_fraction must lie in [0, 1]")


@dataclass(frozen=True)
class EncodedBatch:
    """Model inputs of a batch of records, aligned row by row."""

    code_ids: np.ndarray  # int64 (n, L): [CLS] then code and code-group tokens, PAD after
    code_types: np.ndarray  # int64 (n, L): 0 for [CLS], 1.. the code field of each token
    code_mask: np.ndarray  # int64 (n, L): 1 for real tokens
    categorical: np.ndarray  # int64 (n, C): vocabulary index per categorical field
    numeric: np.ndarray  # float32 (n, 2K): standardised values then missing indicators
    note_ids: np.ndarray | None = None  # int64 (n, T) when the notes encoder is on
    note_mask: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.code_ids.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the present arrays by name (the model's forward keywords)."""
        out = {
            "code_ids": self.code_ids,
            "code_types": self.code_types,
            "code_mask": self.code_mask,
            "categorical": self.categorical,
            "numeric": self.numeric,
        }
        if self.note_ids is not None and self.note_mask is not None:
            out["note_ids"] = self.note_ids
            out["note_mask"] = self.note_mask
        return out


#: Code-sequence fields whose entries are system-tagged codes (contract 2.0); the others
#: (medication and lab names) are free names, tokenized as they are.
CODED_FIELDS = frozenset(LEGACY_SYSTEM)
#: Separates the parts of a code token: ``dx:icd10cm:I509``, ``dxg:CCSR:CIR019``.
TOKEN_SEPARATOR = ":"  # noqa: S105 (a token separator, not a secret)
#: Shortest ancestor a code backs off to (a 3-character ICD category).
_MIN_BACKOFF_CHARS = grouping.MIN_PREFIX
#: Encoders fitted before this contract major version use the 1.x tokens (bare ICD-9 codes).
TAGGED_TOKENS_MAJOR = 2
_BACKOFF_CACHE_SIZE = 100_000


def code_group(field_name: str, code: str) -> str | None:
    """Return the shared clinical group of one entry of a coded field (``contracts.grouping``):
    ``CCSR:CIR019`` for ``icd10cm:I509`` and for ``4280`` alike; ``None`` for other fields."""
    if field_name not in CODED_FIELDS:
        return None
    return grouping.group(_parse(field_name, code))


def legacy_code_group(field_name: str, code: str) -> str | None:
    """A bare ICD-9 code's 1.x group (``contracts.grouping.icd9_category``); ``None`` where
    the code is its own category (no group token) or the field has none."""
    category = grouping.icd9_category(field_name, code)
    return code[: len(category)] if category is not None and len(code) > len(category) else None


def _parse(field_name: str, code: str) -> codes.Code:
    try:
        return codes.parse(field_name, code, strict=False)
    except codes.CodeError as e:
        raise UnscorableRecordError(field_name, "holds a code of an unknown system") from e


def _one_code_tokens(field_name: str, code: str, legacy: bool) -> list[str]:
    """Tokens of one non-empty entry: the code, then its group where it has one.

    Contract 2.x: ``dx:icd10cm:I509`` and ``dxg:CCSR:CIR019``. An encoder of contract 1.x
    (``legacy``) reads bare ICD-9 tokens as it was trained on (``dx:4280``, ``dxg:428``): an
    ICD-9 code loses its tag, an ICD-10-CM diagnosis goes back to ICD-9-CM through the GEMs
    (``contracts.grouping.to_icd9cm``), an ICD-10-PCS procedure (no GEMs in the package) is a
    token the 1.x vocabulary cannot hold, so it reads as [UNK] without a group token.
    """
    prefix = CODE_FIELD_PREFIXES[field_name]
    if field_name not in CODED_FIELDS:
        return [f"{prefix}:{code}"]
    parsed = _parse(field_name, code)
    if legacy:
        bare = grouping.to_icd9cm(parsed) if field_name == "diagnosis_codes" else parsed
        if bare is None or bare.system not in (codes.CodeSystem.ICD9CM, codes.CodeSystem.ICD9PCS):
            return [f"{prefix}:{parsed.tagged}"]
        old_group = legacy_code_group(field_name, bare.code)
        token = f"{prefix}:{bare.code}"
        return [token] if old_group is None else [token, f"{prefix}g:{old_group}"]
    tokens = [f"{prefix}:{parsed.tagged}"]
    group = grouping.group(parsed)
    if group is not None:
        tokens.append(f"{prefix}g:{group}")
    return tokens


def _code_tokens(field_name: str, value: Any, limit: int, legacy: bool = False) -> list[str]:
    """Return the prefixed tokens (full code, then its group) of one code-sequence field."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise UnscorableRecordError(field_name, "must be a list of strings")
    tokens: list[str] = []
    for code in list(value)[:limit]:
        if code is None:
            continue
        if not isinstance(code, str):
            raise UnscorableRecordError(field_name, "must be a list of strings")
        code = code.strip()
        if not code:
            continue
        tokens.extend(_one_code_tokens(field_name, code, legacy))
    return tokens


def backoff_tokens(token: str) -> list[str]:
    """Tokens to try, in order, for a 2.x code token the vocabulary lacks.

    The code's ancestors in its own system (``dx:icd9cm:25083`` -> ``...:2508`` ->
    ``...:250``), then its other-era equivalent through the GEMs and that one's ancestors
    (``dx:icd10cm:I509`` -> ``dx:icd9cm:4280`` -> ``dx:icd9cm:428``), so a code coded in the
    era the model was not trained on still reads as the exact code the model knows.
    """
    prefix, _, rest = token.partition(TOKEN_SEPARATOR)
    if prefix not in _CODED_PREFIXES:
        return []
    system, _, value = rest.partition(TOKEN_SEPARATOR)
    try:
        code = codes.Code(codes.CodeSystem(system), value)
    except ValueError:
        return []
    chain = [code]
    equivalent = grouping.equivalent(code)
    if equivalent is not None:
        chain.append(equivalent)
    out: list[str] = []
    for i, candidate in enumerate(chain):
        first = len(candidate.code) - (1 if i == 0 else 0)
        for end in range(first, _MIN_BACKOFF_CHARS - 1, -1):
            out.append(
                f"{prefix}{TOKEN_SEPARATOR}{candidate.system}{TOKEN_SEPARATOR}"
                f"{candidate.code[:end]}"
            )
    return out


_CODED_PREFIXES = frozenset(CODE_FIELD_PREFIXES[name] for name in CODED_FIELDS)


def numeric_value(spec: FieldSpec, value: Any) -> float | None:
    """The finite float the model reads (clipped to the field's valid range), ``None`` for
    missing; raise for a value that is not a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise UnscorableRecordError(spec.name, "must be a number")
    if isinstance(value, int):
        # Clipped exactly, as an integer: one beyond float range cannot become a float.
        if spec.valid_min is not None and value < spec.valid_min:
            value = math.floor(spec.valid_min)
        if spec.valid_max is not None and value > spec.valid_max:
            value = math.ceil(spec.valid_max)
        if abs(value) > _LARGEST_FLOAT:
            raise UnscorableRecordError(spec.name, "is out of range")
    number = float(value)
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise UnscorableRecordError(spec.name, "must be finite")
    if spec.valid_min is not None:
        number = max(number, float(spec.valid_min))
    if spec.valid_max is not None:
        number = min(number, float(spec.valid_max))
    return number


def _transform(name: str, number: float) -> float:
    return math.log1p(number) if name in LOG1P_FIELDS else number


def _category(spec: FieldSpec, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UnscorableRecordError(spec.name, "must be a string")
    return value.strip().lower() if spec.categories is None else value.strip()


def _note(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnscorableRecordError(NOTE_FIELD, "must be a string")
    return value


def _require_mapping(record: Any) -> Mapping[str, Any]:
    if not isinstance(record, Mapping):
        raise UnscorableRecordError("record", "must be an object of encounter fields")
    return record


class FeatureEncoder:
    """Fitted encoder of canonical encounter records; build with ``fit`` or ``load``."""

    def __init__(
        self,
        config: EncoderConfig,
        code_vocab: list[str],
        category_vocabs: dict[str, list[str]],
        numeric_stats: dict[str, dict[str, float]],
        notes_enabled: bool,
        notes_tokenizer_json: str | None = None,
        schema_version: str = SCHEMA_VERSION,
    ) -> None:
        self.config = config
        self.code_vocab = code_vocab
        self.code_index = {token: i for i, token in enumerate(code_vocab)}
        #: The contract version the encoder was fitted under; a 1.x encoder reads 1.x tokens.
        self.schema_version = schema_version
        self.legacy_tokens = _major(schema_version) < TAGGED_TOKENS_MAJOR
        self._resolved: dict[str, int] = {}
        self.category_vocabs = category_vocabs
        self.category_index = {
            name: {value: i for i, value in enumerate(vocab)}
            for name, vocab in category_vocabs.items()
        }
        self.numeric_stats = numeric_stats
        # The fields this encoder was fitted on: an artifact of an earlier minor schema version
        # keeps its own inputs and ignores fields added to the contract since.
        self._numeric_specs = tuple(
            spec for spec in model_input_fields(FieldKind.NUMERIC) if spec.name in numeric_stats
        )
        self.notes_enabled = notes_enabled
        self._notes_tokenizer_json = notes_tokenizer_json
        self._notes_tokenizer: Any = None
        if notes_enabled:
            if notes_tokenizer_json is None:
                raise ValueError("notes are enabled but no notes tokenizer was given")
            self._notes_tokenizer = _load_tokenizer(notes_tokenizer_json, config.note_max_length)

    # ----- the fitted shape, which the model config is built from -----
    @property
    def numeric_fields(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self._numeric_specs)

    @property
    def categorical_fields(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in model_input_fields(FieldKind.CATEGORICAL))

    @property
    def code_fields(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in model_input_fields(FieldKind.CODE_SEQUENCE))

    @property
    def category_cardinalities(self) -> list[int]:
        return [len(self.category_vocabs[name]) for name in self.categorical_fields]

    @property
    def numeric_width(self) -> int:
        return 2 * len(self.numeric_fields)

    @property
    def num_code_types(self) -> int:
        return 1 + len(self.code_fields)

    @property
    def note_vocab_size(self) -> int:
        return int(self._notes_tokenizer.get_vocab_size()) if self.notes_enabled else 0

    # ----- fitting -----
    @classmethod
    def fit(
        cls, records: Iterable[Mapping[str, Any]], config: EncoderConfig | None = None
    ) -> FeatureEncoder:
        """Learn vocabularies, imputation and scaling from the training split's records."""
        config = config or EncoderConfig()
        numeric_specs = model_input_fields(FieldKind.NUMERIC)
        categorical_specs = model_input_fields(FieldKind.CATEGORICAL)
        code_specs = model_input_fields(FieldKind.CODE_SEQUENCE)
        values: dict[str, list[float]] = {spec.name: [] for spec in numeric_specs}
        category_counts: dict[str, Counter[str]] = {
            spec.name: Counter() for spec in categorical_specs
        }
        code_counts: Counter[str] = Counter()
        notes: list[str] = []
        n_records = 0
        for raw in records:
            record = _require_mapping(raw)
            n_records += 1
            for spec in numeric_specs:
                number = numeric_value(spec, record.get(spec.name))
                if number is not None:
                    values[spec.name].append(_transform(spec.name, number))
            for spec in categorical_specs:
                category = _category(spec, record.get(spec.name))
                if category is not None:
                    category_counts[spec.name][category] += 1
            for spec in code_specs:
                code_counts.update(
                    set(_code_tokens(spec.name, record.get(spec.name), config.max_codes_per_field))
                )
            note = _note(record.get(NOTE_FIELD)).strip()
            if note:
                notes.append(note)
        if n_records == 0:
            raise ValueError("cannot fit the encoder on an empty training split")

        numeric_stats = {name: _numeric_stats(column) for name, column in values.items()}
        category_vocabs = {
            spec.name: _category_vocab(spec, category_counts[spec.name], config)
            for spec in categorical_specs
        }
        kept = sorted(
            (token for token, count in code_counts.items() if count >= config.code_min_frequency),
            key=lambda token: (-code_counts[token], token),
        )
        code_vocab = [*SPECIAL_CODE_TOKENS, *kept]
        notes_enabled = len(notes) > 0 and len(notes) >= config.note_min_fraction * n_records
        tokenizer_json = _train_notes_tokenizer(notes, config) if notes_enabled else None
        return cls(
            config, code_vocab, category_vocabs, numeric_stats, notes_enabled, tokenizer_json
        )

    # ----- encoding -----
    def encode(self, records: Sequence[Mapping[str, Any]]) -> EncodedBatch:
        """Encode records into model arrays; padding is to the longest row of this batch."""
        n = len(records)
        token_rows: list[list[int]] = []
        type_rows: list[list[int]] = []
        categorical = np.zeros((n, len(self.categorical_fields)), dtype=np.int64)
        numeric = np.zeros((n, self.numeric_width), dtype=np.float32)
        numeric_specs = self._numeric_specs
        categorical_specs = model_input_fields(FieldKind.CATEGORICAL)
        code_specs = model_input_fields(FieldKind.CODE_SEQUENCE)
        k = len(numeric_specs)
        notes: list[str] = []
        for row, raw in enumerate(records):
            record = _require_mapping(raw)
            for j, spec in enumerate(numeric_specs):
                stats = self.numeric_stats[spec.name]
                number = numeric_value(spec, record.get(spec.name))
                if number is None:
                    numeric[row, k + j] = 1.0
                    transformed = stats["median"]
                else:
                    transformed = _transform(spec.name, number)
                numeric[row, j] = (transformed - stats["mean"]) / stats["std"]
            for j, spec in enumerate(categorical_specs):
                category = _category(spec, record.get(spec.name))
                index = self.category_index[spec.name]
                categorical[row, j] = (
                    CATEGORY_UNK_ID if category is None else index.get(category, CATEGORY_UNK_ID)
                )
            tokens = [CLS_ID]
            types = [CLS_TYPE_ID]
            for type_id, spec in enumerate(code_specs, start=1):
                for token in _code_tokens(
                    spec.name,
                    record.get(spec.name),
                    self.config.max_codes_per_field,
                    self.legacy_tokens,
                ):
                    tokens.append(self.token_id(token))
                    types.append(type_id)
            token_rows.append(tokens[: self.config.max_code_length])
            type_rows.append(types[: self.config.max_code_length])
            if self.notes_enabled:
                notes.append(_note(record.get(NOTE_FIELD)))
        width = max((len(row) for row in token_rows), default=1)
        code_ids = np.full((n, width), PAD_ID, dtype=np.int64)
        code_types = np.zeros((n, width), dtype=np.int64)
        code_mask = np.zeros((n, width), dtype=np.int64)
        for row, (tokens, types) in enumerate(zip(token_rows, type_rows, strict=True)):
            code_ids[row, : len(tokens)] = tokens
            code_types[row, : len(types)] = types
            code_mask[row, : len(tokens)] = 1
        note_ids, note_mask = self._encode_notes(notes) if self.notes_enabled else (None, None)
        return EncodedBatch(
            code_ids, code_types, code_mask, categorical, numeric, note_ids, note_mask
        )

    def code_tokens(self, field_name: str, code: str) -> list[str]:
        """The tokens one (stripped, non-empty) code of a code field becomes in ``encode``."""
        return _one_code_tokens(field_name, code, self.legacy_tokens)

    def token_id(self, token: str) -> int:
        """The vocabulary id of a code token: its own, else (2.x) the first of its
        ``backoff_tokens`` the vocabulary holds, else [UNK]."""
        found = self.code_index.get(token)
        if found is not None:
            return found
        resolved = self._resolved.get(token)
        if resolved is None:
            candidates = () if self.legacy_tokens else backoff_tokens(token)
            index = self.code_index
            resolved = next((index[c] for c in candidates if c in index), UNK_ID)
            if len(self._resolved) < _BACKOFF_CACHE_SIZE:
                self._resolved[token] = resolved
        return resolved

    def _encode_notes(self, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and mask of each note, truncated to ``note_max_length``.

        A discharge summary runs to thousands of words of which the first ``note_max_length``
        tokens are kept, so each note is tokenized from a prefix (``NOTE_PREFIX_CHARS_PER_TOKEN``
        characters per kept token) and only re-tokenized whole when that prefix might not give
        the same tokens (``_prefix_suffices``): the result is always that of the whole note.
        """
        tokenizer = self._notes_tokenizer
        limit = self.config.note_max_length * NOTE_PREFIX_CHARS_PER_TOKEN
        prefixes = [note[:limit] for note in notes]
        encodings = list(tokenizer.encode_batch(prefixes))
        for i, (note, prefix) in enumerate(zip(notes, prefixes, strict=True)):
            if len(note) > len(prefix) and not _prefix_suffices(encodings[i], prefix):
                encodings[i] = tokenizer.encode(note)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(notes), width), tokenizer.padding["pad_id"], dtype=np.int64)
        mask = np.zeros((len(notes), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.attention_mask)] = encoding.attention_mask
        return ids, mask

    def feature_names(self) -> list[str]:
        """Names of the tabular columns in the order ``categorical`` then ``numeric`` hold them."""
        numeric = list(self.numeric_fields)
        return [*self.categorical_fields, *numeric, *(f"{name}_missing" for name in numeric)]

    # ----- persistence -----
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "config": self.config.__dict__,
            "code_vocab": self.code_vocab,
            "category_vocabs": self.category_vocabs,
            "numeric_stats": self.numeric_stats,
            "log1p_fields": sorted(LOG1P_FIELDS),
            "code_field_prefixes": CODE_FIELD_PREFIXES,
            "notes_enabled": self.notes_enabled,
        }

    def save(self, directory: str | Path) -> None:
        """Write ``encoder.json`` (and the notes tokenizer when notes are on) to ``directory``."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / ENCODER_FILE).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        if self.notes_enabled and self._notes_tokenizer_json is not None:
            (path / NOTES_TOKENIZER_FILE).write_text(self._notes_tokenizer_json)

    @classmethod
    def load(cls, directory: str | Path) -> FeatureEncoder:
        """Rebuild the encoder saved by ``save``.

        Contract 1.x encoders keep loading and read 1.x tokens (see ``_one_code_tokens``); one of
        a later major version than this code knows is refused.
        """
        path = Path(directory)
        data = json.loads((path / ENCODER_FILE).read_text())
        version = str(data["schema_version"])
        if not 1 <= _major(version) <= _major(SCHEMA_VERSION):
            raise ValueError(
                f"encoder was fitted for contract {version}; this code reads 1.x to "
                f"{_major(SCHEMA_VERSION)}.x"
            )
        notes_enabled = bool(data["notes_enabled"])
        tokenizer_json = (path / NOTES_TOKENIZER_FILE).read_text() if notes_enabled else None
        return cls(
            EncoderConfig(**data["config"]),
            list(data["code_vocab"]),
            {name: list(vocab) for name, vocab in data["category_vocabs"].items()},
            {name: dict(stats) for name, stats in data["numeric_stats"].items()},
            notes_enabled,
            tokenizer_json,
            version,
        )


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def labels(records: Sequence[Mapping[str, Any]], field_name: str = "readmitted_30d") -> np.ndarray:
    """Return the binary labels as float32; a missing or non-binary label names the field."""
    out = np.zeros(len(records), dtype=np.float32)
    for i, record in enumerate(records):
        value = record.get(field_name)
        if isinstance(value, bool) or value not in (0, 1):
            raise UnscorableRecordError(field_name, "must be 0 or 1")
        out[i] = float(value)
    return out


def _numeric_stats(column: list[float]) -> dict[str, float]:
    if not column:
        return {"median": 0.0, "mean": 0.0, "std": 1.0}
    array = np.asarray(column, dtype=np.float64)
    std = float(array.std())
    return {
        "median": float(np.median(array)),
        "mean": float(array.mean()),
        "std": std if std > _MIN_STD else 1.0,
    }


def _category_vocab(spec: FieldSpec, counts: Counter[str], config: EncoderConfig) -> list[str]:
    """Closed vocabularies come from the contract; open ones keep frequent training values."""
    if spec.categories is not None:
        return [UNK_TOKEN, *spec.categories]
    kept = sorted(
        (value for value, count in counts.items() if count >= config.category_min_frequency),
        key=lambda value: (-counts[value], value),
    )
    return [UNK_TOKEN, *kept]


def _prefix_suffices(encoding: Any, prefix: str) -> bool:
    """Whether a cut note's prefix gave the whole note's tokens.

    It did when the prefix filled every kept position (so the whole note, longer still, is
    truncated at the same length) and the last kept token ends before the prefix's last
    whitespace: the BERT pre-tokenizer splits words at whitespace and WordPiece tokenizes each
    word alone, so the cut can only change the tokens of the word it falls in.
    """
    if not encoding.overflowing:  # the prefix did not fill the kept positions
        return False
    last_space = max(prefix.rfind(" "), prefix.rfind("\n"), prefix.rfind("\t"))
    ends = [
        end
        for (_, end), kept in zip(encoding.offsets, encoding.attention_mask, strict=True)
        if kept
    ]
    return bool(ends) and max(ends) <= last_space


def _train_notes_tokenizer(notes: list[str], config: EncoderConfig) -> str:
    """Train a lower-cased WordPiece tokenizer on the training notes; return its JSON."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=config.note_vocab_size,
        min_frequency=2,
        special_tokens=[PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN],
        show_progress=False,
    )
    tokenizer.train_from_iterator(notes, trainer=trainer)
    return str(tokenizer.to_str())


def _load_tokenizer(tokenizer_json: str, max_length: int) -> Any:
    from tokenizers import Tokenizer, processors

    tokenizer = Tokenizer.from_str(tokenizer_json)
    cls_id = tokenizer.token_to_id(CLS_TOKEN)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS_TOKEN} $A", special_tokens=[(CLS_TOKEN, cls_id)]
    )
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(PAD_TOKEN), pad_token=PAD_TOKEN)
    return tokenizer
