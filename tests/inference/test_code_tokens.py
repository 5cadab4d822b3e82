"""Model tokens of contract 2.0 (system + shared clinical group) and the 1.x artifact migration.

Contract 2.0 tokens carry the code's system and its CCSR group (contracts.grouping), so that a
code the vocabulary never saw still lands in its group. Encoders (and so model artifacts) of
contract 1.x keep loading and read the tokens they were trained on: untagged ICD-9 codes, an
ICD-10-CM diagnosis mapped back through the GEMs, an ICD-10-PCS procedure as [UNK].
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from contracts import codes
from inference.encoding import (
    CLS_ID,
    ENCODER_FILE,
    UNK_ID,
    EncoderConfig,
    FeatureEncoder,
    UnscorableRecordError,
    backoff_tokens,
)
from inference.handler import model_fn
from inference.predictor import ServingModel
from tests.inference.test_handler import records, score
from tests.training.test_training_encoding import _record

SPECIALS = ["[PAD]", "[UNK]", "[CLS]"]


def _fit(diagnoses: list[str]) -> FeatureEncoder:
    return FeatureEncoder.fit(
        [_record(diagnosis_codes=diagnoses, procedure_codes=["3995"]) for _ in range(4)],
        EncoderConfig(code_min_frequency=2, category_min_frequency=2),
    )


def _code_ids(encoder: FeatureEncoder, diagnoses: list[str]) -> list[int]:
    record = _record(diagnosis_codes=diagnoses, procedure_codes=[], medications=[])
    return [int(i) for i in encoder.encode([{**record, "abnormal_labs": []}]).code_ids[0]]


def test_an_unseen_icd10_code_lands_in_the_group_its_icd9_equivalent_trained() -> None:
    """ICD-9-trained vocabulary; an ICD-10-CM code it never saw: its exact token backs off to
    the ICD-9 code the GEMs give (I50.9 -> 4280), and its group token is the shared CCSR one."""
    encoder = _fit(["4280"])
    vocab = encoder.code_index
    assert _code_ids(encoder, ["icd10cm:I50.9"]) == [
        CLS_ID, vocab["dx:icd9cm:4280"], vocab["dxg:CCSR:CIR019"],
    ]  # fmt: skip
    # Another heart-failure code, whose GEM equivalent (4281) the vocabulary lacks: the exact
    # token backs off to the ICD-9 category, which it lacks too, so [UNK]; the group still holds.
    assert _code_ids(encoder, ["icd10cm:I501"]) == [CLS_ID, UNK_ID, vocab["dxg:CCSR:CIR019"]]


def test_backoff_walks_the_code_up_then_across_eras() -> None:
    assert backoff_tokens("dx:icd10cm:I5099") == [
        "dx:icd10cm:I509", "dx:icd10cm:I50", "dx:icd9cm:4280", "dx:icd9cm:428",
    ]  # fmt: skip
    assert backoff_tokens("dx:icd9cm:25083")[:2] == ["dx:icd9cm:2508", "dx:icd9cm:250"]
    assert backoff_tokens("rx:insulin") == []
    assert backoff_tokens("dxg:CCSR:CIR019") == []


def test_an_icd10_trained_vocabulary_reads_an_old_icd9_code_through_the_forward_gem() -> None:
    encoder = _fit(["icd10cm:I509"])
    assert _code_ids(encoder, ["4280"])[1] == encoder.code_index["dx:icd10cm:I509"]


def test_tagged_and_untagged_icd9_codes_encode_alike() -> None:
    encoder = _fit(["4280"])
    assert _code_ids(encoder, ["4280"]) == _code_ids(encoder, ["icd9cm:428.0"])


def test_a_code_of_an_unknown_system_names_the_field_never_the_code() -> None:
    encoder = _fit(["4280"])
    with pytest.raises(UnscorableRecordError) as caught:
        encoder.encode([_record(diagnosis_codes=["snomed:SECRET84114007"])])
    assert caught.value.field == "diagnosis_codes"
    assert "SECRET" not in str(caught.value)


# ----- contract 1.x artifacts -----
def _as_1x(encoder_json: dict[str, Any], legacy_tokens: list[str]) -> dict[str, Any]:
    """A 1.x encoder document: the 1.x version and a vocabulary of bare ICD-9 tokens, padded
    with filler to the trained embedding's size (so that the saved weights still load)."""
    size = len(encoder_json["code_vocab"])
    vocab = [*SPECIALS, *legacy_tokens][:size]
    vocab += [f"zz:filler{i}" for i in range(size - len(vocab))]
    return {**encoder_json, "schema_version": "1.2.0", "code_vocab": vocab}


def test_a_1x_encoder_reads_bare_icd9_tokens_and_maps_icd10_back(tmp_path: Path) -> None:
    encoder = _fit(["4280"])
    document = _as_1x(encoder.to_dict(), ["dx:4280", "dxg:428", "px:3995", "px:39"])
    (tmp_path / ENCODER_FILE).write_text(json.dumps(document))
    old = FeatureEncoder.load(tmp_path)
    assert old.legacy_tokens
    expected = [CLS_ID, old.code_index["dx:4280"], old.code_index["dxg:428"]]
    for diagnoses in (["4280"], ["icd9cm:4280"], ["icd10cm:I50.9"]):
        assert _code_ids(old, diagnoses) == expected
    procedures = old.encode([_record(diagnosis_codes=[], procedure_codes=["icd10pcs:02HV33Z"])])
    assert procedures.code_ids[0, 1] == UNK_ID  # no PCS GEMs: [UNK], and no group token
    assert old.code_tokens("procedure_codes", "icd10pcs:02HV33Z") == ["px:icd10pcs:02HV33Z"]
    old.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / ENCODER_FILE).read_text())["schema_version"] == "1.2.0"


@pytest.mark.parametrize("version", ["3.0.0", "0.9.0", "x"])
def test_an_encoder_of_an_unknown_major_version_is_refused_with_the_versions(
    tmp_path: Path, version: str
) -> None:
    document = {**_fit(["4280"]).to_dict(), "schema_version": version}
    (tmp_path / ENCODER_FILE).write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"this code reads 1\.x to 2\.x"):
        FeatureEncoder.load(tmp_path)


@pytest.fixture(scope="module")
def model_1x(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ServingModel:
    """The session's tiny model directory turned into a contract-1.x artifact (1.x encoder)."""
    old_dir = tmp_path_factory.mktemp("model-1x") / "model"
    shutil.copytree(model_dir, old_dir)
    path = old_dir / ENCODER_FILE
    document = json.loads(path.read_text())
    legacy = [
        token for token in document["code_vocab"] if token.startswith(("dx:icd9cm:", "px:icd9pcs:"))
    ]
    bare = [t.replace("icd9cm:", "").replace("icd9pcs:", "") for t in legacy]
    groups = sorted({f"dxg:{t[3:6]}" for t in bare if t.startswith("dx:")})
    path.write_text(json.dumps(_as_1x(document, [*bare, *groups])))
    return model_fn(str(old_dir))


def test_a_1x_model_artifact_keeps_serving_old_and_new_requests(model_1x: ServingModel) -> None:
    """Loaded through model_fn; an untagged, a tagged ICD-9 and the ICD-10-CM recoding of the
    same diagnosis (I50.9 -> 4280 by the backward GEM) score identically."""
    assert model_1x.encoder.legacy_tokens
    base = records(1)[0]
    bodies = [
        {**base, "diagnosis_codes": codes_}
        for codes_ in (
            ["4280", "25000"],
            ["icd9cm:428.0", "icd9cm:250.00"],
            ["icd10cm:I50.9", "icd10cm:E119"],
        )
    ]
    scores = [score(model_1x, body)[0]["probability"] for body in bodies]
    assert scores[0] == scores[1] == scores[2]


def test_a_2x_model_artifact_scores_mixed_era_records(serving_model: ServingModel) -> None:
    assert not serving_model.encoder.legacy_tokens
    base = records(1)[0]
    mixed = {
        **base,
        "diagnosis_codes": ["4280", "icd10cm:E11.9"],
        "procedure_codes": ["icd10pcs:02HV33Z", "3995"],
    }
    [prediction] = score(serving_model, mixed)
    assert 0.0 <= prediction["probability"] <= 1.0
    assert codes.parse("diagnosis_codes", "icd10cm:E11.9").code == "E119"


# ----- titles in explanations -----
def test_icd10_codes_read_in_plain_words_and_untitled_codes_by_their_group() -> None:
    from inference.attribution import _code_name
    from inference.code_titles import load_titles, title

    titles = load_titles()
    assert title("diagnosis_codes", "icd10cm:I50.9", titles) == "Heart failure, unspecified"
    assert title("diagnosis_codes", "4280", titles) == "Congestive heart failure, unspecified"
    assert title("diagnosis_codes", "icd9cm:428.0", titles) == title(
        "diagnosis_codes", "4280", titles
    )
    assert str(title("procedure_codes", "icd10pcs:02HV33Z", titles)).startswith(
        "Insertion of Infusion Device"
    )
    # A code the dictionaries lack (a category) is named by its clinical group.
    assert _code_name("diagnosis_codes", "icd10cm:I50", titles) == (
        "diagnosis icd10cm:I50 (clinical group CIR019, Diseases of the circulatory system)"
    )
