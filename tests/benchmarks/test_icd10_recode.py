"""The recode benchmark's parts: GEM recoding of UCI-style codes and the vocabulary coverage."""

from __future__ import annotations

from benchmarks import icd10_recode
from inference.encoding import EncoderConfig, FeatureEncoder
from tests.training.test_training_encoding import _record


def test_uci_style_codes_are_recoded_through_the_forward_gems() -> None:
    assert icd10_recode.recode("4280") == ("icd10cm:I509", "gem")
    assert icd10_recode.recode("428") == ("icd10cm:I509", "gem_category")  # first leaf 4280
    assert icd10_recode.recode("250.83")[1] == "gem"
    assert icd10_recode.recode("E9479") == ("icd9cm:E9479", "unmapped")  # GEM "no map"
    records, counts = icd10_recode.recoded_records([{"diagnosis_codes": ["428", "E9479"]}])
    assert records == [{"diagnosis_codes": ["icd10cm:I509", "icd9cm:E9479"]}]
    assert counts == {"gem_category": 1, "unmapped": 1}


def test_coverage_counts_known_groups_and_exact_tokens_with_and_without_back_off() -> None:
    encoder = FeatureEncoder.fit(
        [_record(diagnosis_codes=["428"]) for _ in range(3)],
        EncoderConfig(code_min_frequency=2, category_min_frequency=2),
    )
    recoded, _ = icd10_recode.recoded_records([{"diagnosis_codes": ["428", "4019"]}])
    coverage = icd10_recode.vocabulary_coverage(encoder, recoded)
    # I509 backs off to 4280 then 428 (known); hypertension's group was never seen.
    assert coverage["codes"] == 2
    assert coverage["known_exact_token"] == 1
    assert coverage["in_a_known_group"] == 1
    with icd10_recode.groups_only(encoder):
        assert icd10_recode.vocabulary_coverage(encoder, recoded)["known_exact_token"] == 0
    assert icd10_recode.vocabulary_coverage(encoder, recoded)["known_exact_token"] == 1
