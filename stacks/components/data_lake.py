"""The data lake: one KMS key, the four data buckets, their access-log bucket, the catalog.

Who may read or write patient data is decided here, in the resource policies, not only in
the roles' own policies: the key's policy lets the account administer the key but use it only
to the platform roles of :data:`PHI_ACCESS` (and Secrets Manager for the de-identification
secret), and each data bucket denies object access to every principal but its roles. The
roles are created by later stacks, so the policies name them by the ARN built from
:meth:`stacks.naming.ResourceNames.role` in an ``aws:PrincipalArn`` condition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.components.drift_monitor import CAPTURE_PREFIX, GROUND_TRUTH_PREFIX
from stacks.components.grants import grant_key, grant_objects
from stacks.components.secure_bucket import NO_REPLICATION_REASON, LifecyclePolicy, SecureBucket
from stacks.config import ETL_SOURCES, RetentionConfig
from stacks.nag import acknowledge
from stacks.naming import ResourceNames
from stacks.wildcards import acknowledge_wildcards

#: Raw extracts move to infrequent access once the ETL has read them.
RAW_INFREQUENT_ACCESS_DAYS = 30

#: What the account may do with the data key: administer it, never use it. Deliberately no
#: ``kms:Create*`` (it would include CreateGrant) and no cryptographic operation. The
#: account keeps PutKeyPolicy, so a change of who may decrypt is a policy change that
#: CloudTrail records. https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
KEY_ADMIN_ACTIONS = (
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:List*",
    "kms:PutKeyPolicy",
    "kms:UpdateKeyDescription",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:RotateKeyOnDemand",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:RevokeGrant",
    "kms:RetireGrant",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)
#: Cryptographic use of the data key (S3 SSE-KMS with bucket keys, Secrets Manager, SageMaker).
KEY_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
    "kms:DescribeKey",
)
#: Grants for AWS resources: SageMaker encrypts training volumes, endpoint volumes and capture
#: through grants it creates for the caller. kms:GrantIsForAWSResource applies to these three
#: actions only (never to DescribeKey, where it could never match).
#: https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource
GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")
#: What Secrets Manager needs from the key when a principal creates or changes the secret's
#: value on its own behalf (the CloudFormation role creating it):
#: https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html
SECRETS_MANAGER_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
#: Object actions a data bucket denies to every principal but its roles.
OBJECT_ACTIONS = ("s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:RestoreObject")


@dataclass(frozen=True)
class PhiAccess:
    """The platform roles (purposes of :data:`stacks.naming.ROLE_PURPOSES`) per PHI resource.

    The resource policies allow these roles and deny every other principal; each role's own
    IAM policy still limits it to its prefixes and actions.
    """

    raw: tuple[str, ...]
    curated: tuple[str, ...]
    artifacts: tuple[str, ...]
    capture: tuple[str, ...]
    deid_secret: tuple[str, ...]
    #: Roles SageMaker creates key grants for (encrypted volumes and data capture): "The KMS
    #: key policy must grant permission to the IAM role that you specify in your
    #: CreateTrainingJob" (the training role) and "... in your CreateEndpoint and
    #: UpdateEndpoint requests" (the deployer, and the serving role it passes):
    #: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_OutputDataConfig.html
    sagemaker_grants: tuple[str, ...]

    @property
    def buckets(self) -> dict[str, tuple[str, ...]]:
        """Bucket construct id -> its roles."""
        return {
            "Raw": self.raw,
            "Curated": self.curated,
            "Artifacts": self.artifacts,
            "Capture": self.capture,
        }

    @property
    def key_users(self) -> tuple[str, ...]:
        """Every role that reads or writes a bucket or the secret (all encrypted by the key)."""
        roles = [*self.deid_secret, *self.sagemaker_grants]
        for bucket_roles in self.buckets.values():
            roles.extend(bucket_roles)
        return tuple(sorted(set(roles)))


PHI_ACCESS = PhiAccess(
    # raw/<source>/: delivered by ingest, read by the ETL.
    raw=("etl", "ingest"),
    # features/, protected/: written by the ETL, read by training; <batch source prefix>/
    # read by the nightly transform job (serving role) and the batch writer, which writes the
    # transform output's conversion under worklist-scores/ (the job writes batch-scoring/);
    # the registrar reads manifest.json alone (its sha256 goes on each model version).
    curated=("etl", "training", "serving", "batch-writer", "registrar"),
    # training/<job>/: written by training (model, checkpoints), read by the endpoint (model
    # archive), the deployer (baseline inside the archive), the registrar (evaluation) and
    # the approver (evaluation report).
    artifacts=("training", "serving", "deployer", "registrar", "approver"),
    # capture/ written by the endpoint, baselines/ by the deployer, ground-truth/ by ingest;
    # the drift monitor reads all three.
    capture=("serving", "deployer", "drift-monitor", "ingest"),
    deid_secret=("etl", "predict"),
    sagemaker_grants=("training", "serving", "deployer"),
)


def role_arns(names: ResourceNames, purposes: Sequence[str]) -> list[str]:
    """The ARNs of the roles of ``purposes`` (for an ``aws:PrincipalArn`` condition)."""
    return [names.role_arn(purpose) for purpose in purposes]


def data_key_policy(names: ResourceNames, access: PhiAccess) -> iam.PolicyDocument:
    """Account: administration only; platform roles: use; Secrets Manager: the one secret."""
    account = iam.AccountRootPrincipal()
    secret_arn = (
        f"arn:{Aws.PARTITION}:secretsmanager:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        f":secret:{names.deid_secret}-??????"
    )
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="AccountAdministersButDoesNotUseTheKey",
                principals=[account],
                actions=list(KEY_ADMIN_ACTIONS),
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="PlatformRolesUseTheKey",
                principals=[account],
                actions=list(KEY_USE_ACTIONS),
                resources=["*"],
                conditions={"ArnEquals": {"aws:PrincipalArn": role_arns(names, access.key_users)}},
            ),
            iam.PolicyStatement(
                sid="SageMakerGrantsForPlatformRoles",
                principals=[account],
                actions=list(GRANT_ACTIONS),
                resources=["*"],
                conditions={
                    "ArnEquals": {"aws:PrincipalArn": role_arns(names, access.sagemaker_grants)},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            ),
            # Creating (or putting a new value into) the de-identification secret: Secrets
            # Manager calls KMS on behalf of whoever does it. Limited to that one secret by
            # its encryption context; reading the value stays with the secret's own policy.
            iam.PolicyStatement(
                sid="SecretsManagerForTheDeidentificationSecret",
                principals=[account],
                actions=list(SECRETS_MANAGER_ACTIONS),
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com",
                        "kms:CallerAccount": Aws.ACCOUNT_ID,
                    },
                    "ArnLike": {"kms:EncryptionContext:SecretARN": secret_arn},
                },
            ),
        ]
    )


def deny_all_but(bucket: s3.IBucket, role_arn_list: Sequence[str]) -> None:
    """Deny object reads and writes of ``bucket`` to every principal not in the list."""
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyObjectAccessToAllButThePlatformRoles",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(OBJECT_ACTIONS),
            resources=[bucket.arn_for_objects("*")],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": list(role_arn_list)}},
        )
    )


class DataLake(Construct):
    """KMS key with rotation, the raw, curated, artifact and capture buckets, the ingest role.

    Exposes ``key``, ``access_log_bucket``, ``raw_bucket``, ``curated_bucket``,
    ``artifact_bucket``, ``capture_bucket``, ``phi_buckets`` (the four data buckets),
    ``ingest_role``, ``glue_database_name`` and ``access`` (who may use what).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        retention: RetentionConfig,
        access: PhiAccess = PHI_ACCESS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access = access
        prefix = names.prefix
        removal = RemovalPolicy.RETAIN if retention.retain_data_on_delete else RemovalPolicy.DESTROY
        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{prefix}-data",
            description=f"{prefix}: encrypts patient data at rest in the data lake",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
            policy=data_key_policy(names, access),
        )
        self.access_log_bucket = self._access_log_bucket(retention, removal)

        def data_bucket(name: str, lifecycle: LifecyclePolicy) -> s3.Bucket:
            bucket = SecureBucket(
                self,
                name,
                encryption_key=self.key,
                access_log_bucket=self.access_log_bucket,
                lifecycle=lifecycle,
                retain_on_delete=retention.retain_data_on_delete,
            ).bucket
            deny_all_but(bucket, role_arns(names, access.buckets[name]))
            return bucket

        versions = retention.noncurrent_version_days
        self.raw_bucket = data_bucket(
            "Raw",
            LifecyclePolicy(
                expire_after_days=retention.raw_days,
                noncurrent_version_days=versions,
                infrequent_access_after_days=RAW_INFREQUENT_ACCESS_DAYS,
            ),
        )
        self.curated_bucket = data_bucket("Curated", LifecyclePolicy(None, versions))
        self.artifact_bucket = data_bucket("Artifacts", LifecyclePolicy(None, versions))
        # Only endpoint capture expires: baselines/ and ground-truth/ in the same bucket are
        # what the drift monitor compares capture with, and must outlive it.
        self.capture_bucket = data_bucket(
            "Capture",
            LifecyclePolicy(retention.capture_days, versions, expire_prefix=f"{CAPTURE_PREFIX}/"),
        )
        self.phi_buckets = (
            self.raw_bucket,
            self.curated_bucket,
            self.artifact_bucket,
            self.capture_bucket,
        )
        self.ingest_role = self._ingest_role(names)

        self.glue_database_name = prefix.replace("-", "_")
        glue.CfnDatabase(
            self,
            "CatalogDatabase",
            catalog_id=Stack.of(self).account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.glue_database_name,
                description="De-identified readmission features (curated bucket)",
                location_uri=self.curated_bucket.s3_url_for_object("features/"),
            ),
        )

    def _ingest_role(self, names: ResourceNames) -> iam.Role:
        """The role raw extracts and ground-truth labels are delivered with (write only)."""
        role = iam.Role(
            self,
            "IngestRole",
            role_name=names.role("ingest"),
            assumed_by=iam.AccountRootPrincipal(),
            description=(
                "Delivers raw EHR extracts (raw/<source>/) and ground-truth labels "
                "(capture bucket, ground-truth/); cannot read either back"
            ),
        )
        grant_objects(role, self.raw_bucket, ETL_SOURCES, read=False, write=True, sid="Extracts")
        grant_objects(
            role, self.capture_bucket, [GROUND_TRUTH_PREFIX], read=False, write=True, sid="Labels"
        )
        # GenerateDataKey to write SSE-KMS objects, Decrypt for multipart uploads.
        grant_key(role, self.key, encrypt=True)
        acknowledge_wildcards(
            role,
            "Deliveries are files named by the sender under raw/<source>/ (one folder per "
            "source the ETL reads) and ground-truth/yyyy/mm/dd/; the role may write there "
            "and nowhere else, and read nothing.",
            *(f"Resource::*/{source}/*" for source in ETL_SOURCES),
            f"Resource::*/{GROUND_TRUTH_PREFIX}/*",
        )
        return role

    def admit_access_logs(self, prefix: str) -> None:
        """Let S3 deliver server access logs of a bucket in *another* stack under ``prefix``.

        Across stacks aws-cdk-lib adds that grant without the ``aws:SourceArn`` and
        ``aws:SourceAccount`` conditions S3 documents for the logging principal (a SourceArn
        would make the two stacks depend on each other), so such a bucket is given an imported
        reference to the log bucket and this grant instead, confined to this account:
        https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html
        """
        self.access_log_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[self.access_log_bucket.arn_for_objects(f"{prefix}*")],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )

    def _access_log_bucket(self, retention: RetentionConfig, removal: RemovalPolicy) -> s3.Bucket:
        """S3 server access logs can only be delivered to an SSE-S3 bucket, not SSE-KMS."""
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(retention.access_log_days),
                    noncurrent_version_expiration=Duration.days(retention.noncurrent_version_days),
                )
            ],
            removal_policy=removal,
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyNonLogDeliveryWrites",
                effect=iam.Effect.DENY,
                not_principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects("*")],
            )
        )
        loop = "This is the server access log bucket; logging it into itself would loop."
        acknowledge(bucket, loop, "AwsSolutions-S1", "HIPAA.Security-S3BucketLoggingEnabled")
        acknowledge(
            bucket,
            "S3 server access log delivery supports only SSE-S3 destination buckets.",
            "HIPAA.Security-S3DefaultEncryptionKMS",
        )
        acknowledge(bucket, NO_REPLICATION_REASON, "HIPAA.Security-S3BucketReplicationEnabled")
        return bucket
