"""The ETL: Glue 5.0 job, encrypted everything, the key secret, the catalog tables."""

from __future__ import annotations

from typing import Any

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


def _exported(synthesized: Synthesized, imported: Any) -> Any:
    """What a ``Fn::ImportValue`` of another stack of the stage resolves to (its output)."""
    name = imported["Fn::ImportValue"]
    stack = name.split(":", 1)[0].removeprefix("Readmission-dev-")
    outputs = synthesized[stack].find_outputs("*")
    values = [o["Value"] for o in outputs.values() if o.get("Export", {}).get("Name") == name]
    assert len(values) == 1, name
    return values[0]


def _connection(synthesized: Synthesized) -> dict[str, Any]:
    connection: dict[str, Any] = only(synthesized["Etl"], "AWS::Glue::Connection")[
        "ConnectionInput"
    ]
    return connection


def test_job_runs_in_a_private_subnet_through_a_network_connection(dev: Synthesized) -> None:
    """The job's network interfaces go in an isolated subnet with the ETL security group
    (https://docs.aws.amazon.com/glue/latest/dg/start-connecting.html): a NETWORK connection,
    attached to the job."""
    connection = _connection(dev)
    assert connection["ConnectionType"] == "NETWORK"
    assert _job(dev)["Connections"] == {"Connections": [connection["Name"]]}
    requirements = connection["PhysicalConnectionRequirements"]
    subnet = _exported(dev, requirements["SubnetId"])["Ref"]
    network = dev["Network"]
    subnets = network.find_resources("AWS::EC2::Subnet")
    assert subnet in subnets
    assert subnets[subnet]["Properties"]["MapPublicIpOnLaunch"] is False
    # The subnet's own availability zone (a connection names both).
    assert requirements["AvailabilityZone"] == subnets[subnet]["Properties"]["AvailabilityZone"]
    [group] = requirements["SecurityGroupIdList"]
    group_id = _exported(dev, group)["Fn::GetAtt"][0]
    described = network.find_resources("AWS::EC2::SecurityGroup")[group_id]["Properties"]
    assert "ETL Glue job" in described["GroupDescription"]


def test_the_endpoints_the_job_calls_serve_its_subnet(dev: Synthesized) -> None:
    """S3 (script, library, raw and curated data) through the gateway on the subnet's route
    table; Secrets Manager (the key), KMS, CloudWatch (metrics), Logs and Glue through
    interface endpoints in the subnet."""
    network = dev["Network"]
    subnet = _exported(dev, _connection(dev)["PhysicalConnectionRequirements"]["SubnetId"])
    endpoints = {
        flatten(e["Properties"]["ServiceName"]).rsplit(".", 1)[-1]: e["Properties"]
        for e in network.find_resources("AWS::EC2::VPCEndpoint").values()
    }
    for service in ("secretsmanager", "kms", "monitoring", "logs", "glue"):
        assert subnet in endpoints[service]["SubnetIds"], service
        assert endpoints[service]["PrivateDnsEnabled"] is True, service
    route_tables = [
        a["Properties"]["RouteTableId"]
        for a in network.find_resources("AWS::EC2::SubnetRouteTableAssociation").values()
        if a["Properties"]["SubnetId"] == subnet
    ]
    assert len(route_tables) == 1
    assert route_tables[0] in endpoints["s3"]["RouteTableIds"]


def test_job_role_may_place_interfaces_only_in_its_subnet_and_group(dev: Synthesized) -> None:
    """What Glue does with the job's role to run it in a VPC (the EC2 and connection actions of
    AWSGlueServiceRole, https://docs.aws.amazon.com/aws-managed-policy/latest/reference/
    AWSGlueServiceRole.html), scoped to this connection's subnet and security group."""
    found = statements(dev["Etl"], "EtlRole")

    def granted(action: str) -> list[str]:
        return [
            flatten(r)
            for s in found
            if action in as_list(s["Action"])
            for r in as_list(s["Resource"])
        ]

    requirements = _connection(dev)["PhysicalConnectionRequirements"]
    create = sorted(granted("ec2:CreateNetworkInterface"))
    assert [r.rsplit(":", 1)[-1].split("/")[0] for r in create] == [
        "network-interface",
        "security-group",
        "subnet",
    ]
    assert all(":ec2:<ref>:<ref>:" in r for r in create)
    parts = [
        part
        for s in found
        if "ec2:CreateNetworkInterface" in as_list(s["Action"])
        for r in as_list(s["Resource"])
        for part in r["Fn::Join"][1]
    ]
    assert requirements["SubnetId"] in parts
    assert requirements["SecurityGroupIdList"][0] in parts
    assert granted("ec2:DeleteNetworkInterface") == [
        "arn:<ref>:ec2:<ref>:<ref>:network-interface/*"
    ]
    tagging = [s for s in found if "ec2:CreateTags" in as_list(s["Action"])]
    assert [s["Condition"] for s in tagging] == [
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}}
    ]
    assert granted("ec2:DescribeVpcAttribute") == ["arn:<ref>:ec2:<ref>:<ref>:vpc/<ref>"]
    name = _connection(dev)["Name"]
    assert f"arn:<ref>:glue:<ref>:<ref>:connection/{name}" in granted("glue:GetConnection")
