"""AWS Glue 5.0 script of the ETL job: resolve arguments, fetch the key, call ``run_job``.

Arguments: ``--JOB_NAME``, ``--source``, ``--input_path``, ``--output_path``,
``--deid_secret_id`` (Secrets Manager id whose SecretString is the HMAC key). The
``glue_jobs`` and ``contracts`` packages arrive through ``--extra-py-files``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

GLUE_ARGUMENTS = ("JOB_NAME", "source", "input_path", "output_path", "deid_secret_id")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Glue entrypoint: awsglue is imported here only, so the module imports anywhere."""
    import boto3
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    from glue_jobs.deid import read_deid_key_from_secrets_manager
    from glue_jobs.ehr_features import run_job

    args = getResolvedOptions(list(sys.argv if argv is None else argv), list(GLUE_ARGUMENTS))
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    key = read_deid_key_from_secrets_manager(boto3.client("secretsmanager"), args["deid_secret_id"])
    manifest = run_job(
        glue_context.spark_session,
        args["source"],
        args["input_path"],
        args["output_path"],
        key,
    )
    job.commit()
    return manifest


if __name__ == "__main__":
    main()
