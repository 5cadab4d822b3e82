"""The Spark Charlson column scores every code list as the contract's Python rule does."""

from __future__ import annotations

import random

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.charlson import CHARLSON_CATEGORIES
from contracts.charlson import charlson_index as python_charlson_index
from glue_jobs.charlson import category_pattern, charlson_index

_SYSTEMS = ("icd9cm:", "icd10cm:", "icd9pcs:", "icd10pcs:", "")
_TAIL = "0123456789ABXZ"


def _code(rng: random.Random, prefixes: list[str]) -> str | None:
    """A listed prefix, cut short, extended, moved to another system or untagged; or noise."""
    draw = rng.random()
    if draw < 0.03:
        return None
    if draw < 0.15:
        return rng.choice(_SYSTEMS) + "".join(rng.choices(_TAIL, k=rng.randint(1, 6)))
    system, _, value = rng.choice(prefixes).partition(":")
    value = value[: rng.randint(1, len(value))] if rng.random() < 0.2 else value
    value += "".join(rng.choices(_TAIL, k=rng.choice((0, 0, 1, 2))))
    tag = rng.choice(_SYSTEMS) if rng.random() < 0.2 else f"{system}:"
    return tag + value


def test_spark_column_equals_the_python_rule_on_generated_code_lists(spark: SparkSession) -> None:
    """Fails on any code list where the pattern form and the prefix-set rule disagree:
    prefixes cut short or extended, codes moved across systems, untagged codes (ICD-9), null
    entries, empty lists."""
    rng = random.Random(20261203)
    prefixes = sorted({p for _, _, listed in CHARLSON_CATEGORIES for p in listed})
    rows = [(i, [_code(rng, prefixes) for _ in range(rng.randint(0, 12))]) for i in range(3000)]
    frame = spark.createDataFrame(rows, "i int, codes array<string>")
    scored = {
        r["i"]: r["score"]
        for r in frame.select("i", charlson_index(F.col("codes")).alias("score")).collect()
    }
    expected = {i: python_charlson_index([c for c in codes if c is not None]) for i, codes in rows}
    assert scored == expected
    assert len(set(expected.values())) > 8  # the lists reach most scores, not only 0


def test_a_code_list_matches_only_at_a_code_start() -> None:
    """The pattern is anchored at the start of a code: a listed prefix inside a code or at
    its end does not count."""
    import re

    pattern = re.compile(category_pattern(("icd9cm:428",)))
    assert pattern.search("icd9cm:4280")
    assert pattern.search("icd9cm:401\nicd9cm:4289")
    assert not pattern.search("icd9cm:1428")
    assert not pattern.search("icd10cm:icd9cm:428")
    assert not pattern.search("icd9cm:42")
