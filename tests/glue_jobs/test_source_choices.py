"""Every source the ETL reads is one the stack's config accepts for the Glue job (and back)."""

from __future__ import annotations

from glue_jobs.ehr_features import SOURCE_CHOICES, parse_args
from stacks.config import ETL_SOURCES


def test_the_glue_job_accepts_every_etl_source() -> None:
    assert set(ETL_SOURCES) == set(SOURCE_CHOICES)
    assert {"mimic4", "fhir"} <= set(ETL_SOURCES)


def test_the_local_entrypoint_takes_the_new_sources() -> None:
    for source in ("mimic4", "fhir"):
        args = parse_args(["--source", source, "--input", "in", "--output", "out"])
        assert args.source == source
