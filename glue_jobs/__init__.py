"""Glue Spark ETL of the readmission platform: EHR tables to de-identified encounter features.

The job modules import only pyspark, the standard library, boto3 and ``contracts`` so that
the package can ship as a Glue ``--extra-py-files`` zip. ``synthetic_ehr`` (numpy, pyarrow)
is a local tool and is never imported by the job.
"""
