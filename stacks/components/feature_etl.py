"""The ETL: the Glue 5.0 job that turns raw EHR extracts into de-identified features.

The job script and its library are assets (``glue_jobs/ehr_features_glue.py`` and the zip of
``glue_jobs`` + ``contracts`` from :func:`stacks.packaging.build_glue_library`); the HMAC key
lives in Secrets Manager; S3 output, CloudWatch logs and bookmarks are KMS-encrypted by the
job's security configuration; the curated output is described in the Data Catalog.

The job runs in the private subnets: a Glue ``NETWORK`` connection names one of them and the
ETL security group, and Glue places the job's network interfaces there, so the job reaches
S3, KMS, Secrets Manager, CloudWatch and Glue only through the VPC's endpoints (and their
same-account policies), never the internet
(https://docs.aws.amazon.com/glue/latest/dg/start-connecting.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from contracts.encounter import ENCOUNTER_FIELDS, PROTECTED_FIELDS, FieldSpec
from stacks.components.grants import grant_key, reference
from stacks.config import EtlConfig
from stacks.nag import acknowledge
from stacks.packaging import REPO_ROOT, build_glue_library
from stacks.wildcards import acknowledge_wildcards

GLUE_SCRIPT = REPO_ROOT / "glue_jobs" / "ehr_features_glue.py"
GLUE_VERSION = "5.0"
WORKER_TYPE = "G.1X"
PARTITION_KEY = "split"
SPLITS = ("train", "validation", "test")
#: Catalog tables of the curated output: table name -> (folder, contract fields).
CATALOG_TABLES: dict[str, tuple[str, tuple[FieldSpec, ...]]] = {
    "features": ("features", ENCOUNTER_FIELDS),
    "protected_attributes": ("protected", PROTECTED_FIELDS),
}
#: contracts.encounter dtypes -> Hive types (Parquet columns read by Athena and Glue).
HIVE_TYPES = {
    "int": "int",
    "double": "double",
    "string": "string",
    "array<string>": "array<string>",
}

ROTATION_REASON = (
    "Rotation is deliberately off: rotating the HMAC de-identification key re-keys every "
    "patient, breaking longitudinal linking and label joins; docs/deploy.md describes the "
    "manual, planned re-key procedure."
)


def hive_columns(fields: tuple[FieldSpec, ...]) -> list[glue.CfnTable.ColumnProperty]:
    """Catalog columns of the contract's fields, less the partition key."""
    return [
        glue.CfnTable.ColumnProperty(
            name=spec.name, type=HIVE_TYPES[spec.dtype], comment=spec.description[:255]
        )
        for spec in fields
        if spec.name != PARTITION_KEY
    ]


def asset_object_arn(scope: Construct, asset: s3_assets.Asset) -> str:
    return f"arn:{Aws.PARTITION}:s3:::{asset.s3_bucket_name}/{asset.s3_object_key}"


#: What Glue does with the job's role to place the job in a VPC: read the subnet, its route
#: table (the S3 gateway endpoint), the security group and the VPC's attributes, and create,
#: tag and delete its network interfaces there. The actions of the AWS managed
#: AWSGlueServiceRole policy (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/
#: AWSGlueServiceRole.html); these Describe actions have no resource type in the Service
#: Authorization Reference (DescribeVpcAttribute has the VPC's, and is granted on it).
GLUE_VPC_DESCRIBE_ACTIONS = (
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
)
#: The tag Glue puts on the network interfaces it manages (AWSGlueServiceRole).
GLUE_RESOURCE_TAG = "aws-glue-service-resource"


class FeatureEtl(Construct):
    """De-identification key secret, security configuration, role, network connection, job
    and catalog tables.

    Exposes ``job_name``, ``deid_secret``, ``role``, ``connection_name`` and ``output_uri``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job_name: str,
        security_configuration_name: str,
        secret_name: str,
        secret_readers: Sequence[str],
        role_name: str,
        etl: EtlConfig,
        data_key: kms.IKey,
        log_key: kms.IKey,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        database_name: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        script: Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        script = script or GLUE_SCRIPT
        if not script.is_file():
            raise FileNotFoundError(f"Glue job script {script.name} is missing under glue_jobs/")
        self.job_name = job_name
        self.deid_secret = self._secret(secret_name, secret_readers, data_key)
        acknowledge(
            self.deid_secret,
            ROTATION_REASON,
            "AwsSolutions-SMG4",
            "HIPAA.Security-SecretsManagerRotationEnabled",
        )
        raw_uri = f"s3://{reference(self, raw_bucket.bucket_name, raw_bucket)}"
        curated_name = reference(self, curated_bucket.bucket_name, curated_bucket)
        self.output_uri = f"s3://{curated_name}/"
        script_asset = s3_assets.Asset(self, "Script", path=str(script))
        library_asset = s3_assets.Asset(self, "Library", path=str(build_glue_library()))
        self.role = self._role(
            role_name,
            data_key,
            log_key,
            raw_bucket,
            curated_bucket,
            etl.source,
            (script_asset, library_asset),
        )
        self.connection_name = f"{job_name}-network"
        connection = self._connection(vpc, subnets, security_group)
        security = glue.CfnSecurityConfiguration(
            self,
            "Security",
            name=security_configuration_name,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS",
                        kms_key_arn=reference(self, data_key.key_arn, data_key),
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=log_key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=log_key.key_arn
                ),
            ),
        )
        self.job = glue.CfnJob(
            self,
            "Job",
            name=job_name,
            description="Raw EHR extract -> de-identified encounter features (curated bucket)",
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            worker_type=WORKER_TYPE,
            number_of_workers=etl.worker_count,
            timeout=etl.timeout_minutes,
            max_retries=0,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            security_configuration=security.name,
            connections=glue.CfnJob.ConnectionsListProperty(connections=[self.connection_name]),
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script_asset.s3_object_url
            ),
            default_arguments={
                "--job-language": "python",
                "--extra-py-files": library_asset.s3_object_url,
                "--source": etl.source,
                "--input_path": f"{raw_uri}/{etl.source}/",
                "--output_path": self.output_uri,
                "--deid_secret_id": self.deid_secret.secret_arn,
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                # The job rewrites its whole output each run: bookmarks would skip input.
                "--job-bookmark-option": "job-bookmark-disable",
            },
        )
        self.job.add_resource_dependency(security)
        self.job.add_resource_dependency(connection)
        for table, (folder, fields) in CATALOG_TABLES.items():
            self._table(table, folder, fields, curated_name, database_name)

    def _connection(
        self, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, security_group: ec2.ISecurityGroup
    ) -> glue.CfnConnection:
        """The ``NETWORK`` connection: one private subnet (a connection holds one) and the
        ETL security group; and what Glue needs, as the job's role, to use them."""
        subnet = vpc.select_subnets(
            subnet_type=subnets.subnet_type, subnet_group_name=subnets.subnet_group_name
        ).subnets[0]
        connection = glue.CfnConnection(
            self,
            "Network",
            catalog_id=Aws.ACCOUNT_ID,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                name=self.connection_name,
                connection_type="NETWORK",
                description="Runs the ETL job in a private subnet (endpoints only, no internet)",
                physical_connection_requirements=(
                    glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                        subnet_id=subnet.subnet_id,
                        availability_zone=subnet.availability_zone,
                        security_group_id_list=[security_group.security_group_id],
                    )
                ),
            ),
        )
        self._grant_network(vpc, subnet, security_group)
        return connection

    def _grant_network(
        self, vpc: ec2.IVpc, subnet: ec2.ISubnet, security_group: ec2.ISecurityGroup
    ) -> None:
        """Read the connection, and create and remove the job's network interfaces."""

        def ec2_arn(resource: str) -> str:
            return f"arn:{Aws.PARTITION}:ec2:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"

        interfaces = ec2_arn("network-interface/*")
        statements = [
            iam.PolicyStatement(
                sid="ReadNetworkConnection",
                actions=["glue:GetConnection"],
                resources=[
                    f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:catalog",
                    f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
                    f":connection/{self.connection_name}",
                ],
            ),
            iam.PolicyStatement(
                sid="DescribeJobNetwork", actions=list(GLUE_VPC_DESCRIBE_ACTIONS), resources=["*"]
            ),
            iam.PolicyStatement(
                sid="DescribeJobVpc",
                actions=["ec2:DescribeVpcAttribute"],
                resources=[ec2_arn(f"vpc/{vpc.vpc_id}")],
            ),
            iam.PolicyStatement(
                sid="CreateJobNetworkInterfaces",
                actions=["ec2:CreateNetworkInterface"],
                resources=[
                    interfaces,
                    ec2_arn(f"subnet/{subnet.subnet_id}"),
                    ec2_arn(f"security-group/{security_group.security_group_id}"),
                ],
            ),
            iam.PolicyStatement(
                sid="DeleteJobNetworkInterfaces",
                actions=["ec2:DeleteNetworkInterface"],
                resources=[interfaces],
            ),
            iam.PolicyStatement(
                sid="TagJobNetworkInterfaces",
                actions=["ec2:CreateTags", "ec2:DeleteTags"],
                resources=[interfaces],
                conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [GLUE_RESOURCE_TAG]}},
            ),
        ]
        # A policy of its own, so that its findings carry their own reason.
        policy = iam.Policy(self, "NetworkPolicy", statements=statements, roles=[self.role])
        acknowledge_wildcards(
            policy,
            "Glue creates the job's network interfaces at run time, so their ids are only known "
            "then (create, tag and delete are pinned to interfaces of this account and region, "
            "tagging to Glue's own tag key); the EC2 Describe actions Glue calls to check the "
            "subnet, route table and security group have no resource type in the Service "
            "Authorization Reference.",
            "Resource::*:network-interface/*",
            "Resource::[*]",
        )

    def _secret(
        self, secret_name: str, readers: Sequence[str], data_key: kms.IKey
    ) -> secretsmanager.Secret:
        """The HMAC key, encrypted with the data key; only ``readers`` (role ARNs) may read it.

        The data key's own policy (stacks.components.data_lake) already lets Secrets Manager
        use it for this secret, so the key is passed as an imported reference: the Secret
        construct would otherwise add a broader statement to that policy from here.
        """
        if not readers:
            raise ValueError("the de-identification secret needs the roles that read it")
        key = kms.Key.from_key_arn(
            self, "DataKeyOfSecret", reference(self, data_key.key_arn, data_key)
        )
        secret = secretsmanager.Secret(
            self,
            "DeidentificationKey",
            secret_name=secret_name,
            description="HMAC-SHA256 key of the de-identification (contracts.deidentify)",
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        secret.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyReadingTheKeyToAllButItsReaders",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["secretsmanager:GetSecretValue"],
                resources=["*"],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": list(readers)}},
            )
        )
        return secret

    def _role(
        self,
        role_name: str,
        data_key: kms.IKey,
        log_key: kms.IKey,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        source: str,
        assets: tuple[s3_assets.Asset, ...],
    ) -> iam.Role:
        """Read raw/<source>, read-write the curated bucket, the key, the secret, its logs."""
        role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="The ETL Glue job runs as this role",
        )
        raw_arn = reference(role, raw_bucket.bucket_arn, raw_bucket)
        curated_arn = reference(role, curated_bucket.bucket_arn, curated_bucket)
        statements = [
            iam.PolicyStatement(
                sid="ReadRawExtract",
                actions=["s3:GetObject"],
                resources=[f"{raw_arn}/{source}/*"],
            ),
            iam.PolicyStatement(
                sid="ListRawExtract",
                actions=["s3:ListBucket"],
                resources=[raw_arn],
                conditions={"StringLike": {"s3:prefix": [f"{source}/*", source]}},
            ),
            iam.PolicyStatement(
                sid="PublishCuratedOutput",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
                resources=[curated_arn, f"{curated_arn}/*"],
            ),
            iam.PolicyStatement(
                sid="ReadJobCode",
                actions=["s3:GetObject"],
                resources=[asset_object_arn(self, asset) for asset in assets],
            ),
            iam.PolicyStatement(
                sid="ReadDeidentificationKey",
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[self.deid_secret.secret_arn],
            ),
            iam.PolicyStatement(
                sid="GlueLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:AssociateKmsKey",
                ],
                resources=[
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws-glue/*"
                ],
            ),
            iam.PolicyStatement(
                sid="GlueMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        grant_key(role, data_key, encrypt=True)
        grant_key(role, log_key, encrypt=True)
        acknowledge_wildcards(
            role,
            "The job reads every object of its source's folder in the raw bucket and "
            "atomically replaces the whole curated output (staging folders, features/, "
            "protected/, quarantine/, manifest.json), whose keys are generated by Spark; "
            "Glue names its log groups /aws-glue/<kind>; PutMetricData's only resource type "
            "(dataset) does not name metrics, so it is pinned to the Glue namespace by the "
            "cloudwatch:namespace condition.",
            "Resource::[*]",
            "Resource::*/*",
            "Resource::*:log-group:/aws-glue/*",
        )
        return role

    def _table(
        self,
        name: str,
        folder: str,
        fields: tuple[FieldSpec, ...],
        curated_name: str,
        database_name: str,
    ) -> None:
        """A Parquet table partitioned by split, with partition projection (no crawler)."""
        location = f"s3://{curated_name}/{folder}/"
        glue.CfnTable(
            self,
            f"{name.title().replace('_', '')}Table",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=f"De-identified {name.replace('_', ' ')} (contracts.encounter)",
                table_type="EXTERNAL_TABLE",
                partition_keys=[glue.CfnTable.ColumnProperty(name=PARTITION_KEY, type="string")],
                parameters={
                    "classification": "parquet",
                    "projection.enabled": "true",
                    f"projection.{PARTITION_KEY}.type": "enum",
                    f"projection.{PARTITION_KEY}.values": ",".join(SPLITS),
                    "storage.location.template": f"{location}{PARTITION_KEY}=${{{PARTITION_KEY}}}",
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=hive_columns(fields),
                    location=location,
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=(
                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                        )
                    ),
                ),
            ),
        )
