"""The ETL: Glue 5.0 job, encrypted everything, the key secret, the catalog tables."""

from __future__ import annotations

from aws_cdk.assertions import Match

from contracts.encounter import ENCOUNTER_FIELDS, PROTECTED_FIELDS
from stacks.components.feature_etl import HIVE_TYPES
from tests.stacks.conftest import Synthesized, as_list, flatten, only, statements


def _job(synthesized: Synthesized) -> dict:
    return only(synthesized["Etl"], "AWS::Glue::Job")


def test_job_is_glue_5_spark_with_the_stage_workers(dev: Synthesized, prod: Synthesized) -> None:
    job = _job(dev)
    assert job["Name"] == "readmission-dev-ehr-features"
    assert (job["GlueVersion"], job["WorkerType"], job["NumberOfWorkers"]) == ("5.0", "G.1X", 2)
    assert job["Command"]["Name"] == "glueetl"
    assert job["Command"]["PythonVersion"] == "3"
    assert flatten(job["Command"]["ScriptLocation"]).endswith(".py")
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert (_job(prod)["NumberOfWorkers"], _job(prod)["Timeout"]) == (10, 180)


def test_job_arguments_are_those_the_glue_script_reads(dev: Synthesized) -> None:
    args = _job(dev)["DefaultArguments"]
    assert args["--source"] == "mimic3"
    assert flatten(args["--input_path"]).endswith("/mimic3/")
    assert flatten(args["--output_path"]).startswith("s3://")
    assert flatten(args["--extra-py-files"]).endswith(".zip")
    assert "--deid_secret_id" in args
    assert args["--job-bookmark-option"] == "job-bookmark-disable"


def test_security_configuration_encrypts_output_logs_and_bookmarks(dev: Synthesized) -> None:
    etl = dev["Etl"]
    security = only(etl, "AWS::Glue::SecurityConfiguration")
    encryption = security["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    assert _job(dev)["SecurityConfiguration"] == "readmission-dev-glue-security"


def test_deidentification_secret_is_kms_encrypted_retained_and_not_rotated(
    dev: Synthesized,
) -> None:
    etl = dev["Etl"]
    secrets = etl.find_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 1
    secret = next(iter(secrets.values()))
    assert secret["Properties"]["Name"] == "readmission-dev/deidentification-key"
    assert "KmsKeyId" in secret["Properties"]
    assert secret["Properties"]["GenerateSecretString"] == {
        "ExcludePunctuation": True,
        "PasswordLength": 64,
    }
    assert secret["DeletionPolicy"] == "Retain"
    etl.resource_count_is("AWS::SecretsManager::RotationSchedule", 0)


def test_catalog_tables_follow_the_contract(dev: Synthesized) -> None:
    etl = dev["Etl"]
    expected = {"features": ENCOUNTER_FIELDS, "protected_attributes": PROTECTED_FIELDS}
    for name, fields in expected.items():
        properties = only(
            etl, "AWS::Glue::Table", {"TableInput": Match.object_like({"Name": name})}
        )
        assert properties["DatabaseName"] == "readmission_dev"
        table = properties["TableInput"]
        columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        assert columns == [(f.name, HIVE_TYPES[f.dtype]) for f in fields if f.name != "split"]
        assert table["PartitionKeys"] == [{"Name": "split", "Type": "string"}]
        assert table["Parameters"]["projection.split.values"] == "train,validation,test"
        assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith(
            "ParquetHiveSerDe"
        )


def test_job_role_reads_only_its_source_folder_and_the_secret(dev: Synthesized) -> None:
    found = statements(dev["Etl"], "EtlRole")
    raw = next(s for s in found if s.get("Sid") == "ReadRawExtract")
    assert raw["Action"] == "s3:GetObject"
    assert flatten(raw["Resource"]).endswith("/mimic3/*")
    secret = next(s for s in found if s.get("Sid") == "ReadDeidentificationKey")
    assert list(secret["Resource"]) == ["Ref"]
    for statement in found:
        assert not any(a.endswith(":*") for a in as_list(statement["Action"])), statement


def test_job_passes_every_argument_the_glue_script_resolves(dev: Synthesized) -> None:
    from glue_jobs.ehr_features_glue import GLUE_ARGUMENTS

    args = _job(dev)["DefaultArguments"]
    # Glue itself passes --JOB_NAME.
    assert {f"--{name}" for name in GLUE_ARGUMENTS if name != "JOB_NAME"} <= set(args)
