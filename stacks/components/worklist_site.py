"""The worklist page's hosting: a private S3 bucket behind CloudFront with Origin Access Control.

- The bucket is a :class:`SecureBucket` (KMS, TLS-only, versioned, access-logged, public access
  blocked) with its own key; only this distribution may read it (OAC: CloudFront signs its
  requests, the bucket policy and key policy name the distribution):
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html
- Viewers must use HTTPS; with a custom domain (worklist.domain_name + a us-east-1 ACM
  certificate) the security policy is TLSv1.2_2021. On *.cloudfront.net CloudFront always uses
  TLSv1 whatever the setting, so production stages set a domain:
  https://docs.aws.amazon.com/AmazonCloudFront/latest/APIReference/API_ViewerCertificate.html
- A response headers policy sends HSTS, the CSP of ``web/worklist/security_headers.json`` (no
  'unsafe-inline'; the page may talk to its API and sign-in origins only), frame options,
  nosniff and the referrer policy; the local site sends the same (local_platform/worklist_site).
- WAF: a web ACL for CloudFront must be created in us-east-1 with scope CLOUDFRONT, so this
  stack (in the platform's region) takes its ARN from configuration (worklist.web_acl_arn):
  https://docs.aws.amazon.com/waf/latest/developerguide/how-aws-waf-works-resources.html
- The page's files are deployed with ``BucketDeployment``, plus ``config.json`` (API URL, sign-in
  endpoints, client id) resolved at deploy time; the distribution is invalidated on deploy.

Exposes ``bucket``, ``distribution``, ``url`` (``https://<domain>/``) and ``origin``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from stacks.components.secure_bucket import LifecyclePolicy, SecureBucket
from stacks.config import WorklistConfig
from stacks.nag import acknowledge
from stacks.packaging import REPO_ROOT

WEB_ROOT = REPO_ROOT / "web" / "worklist"
SECURITY_HEADERS_FILE = WEB_ROOT / "security_headers.json"
#: What is deployed to the bucket (the headers file is configuration, not content).
PAGE_EXCLUDES = ("security_headers.json",)
CONFIG_FILE = "config.json"
MINIMUM_TLS = cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021


def security_headers(api_origin: str, auth_origin: str, path: Path = SECURITY_HEADERS_FILE) -> Any:
    """The response headers policy's security headers, from the file the local site reads."""
    spec = json.loads(path.read_text())
    policy = spec["content_security_policy"].format(api_origin=api_origin, auth_origin=auth_origin)
    return cloudfront.ResponseSecurityHeadersBehavior(
        content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
            content_security_policy=policy, override=True
        ),
        strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
            access_control_max_age=Duration.seconds(spec["strict_transport_security_seconds"]),
            include_subdomains=True,
            override=True,
        ),
        frame_options=cloudfront.ResponseHeadersFrameOptions(
            frame_option=cloudfront.HeadersFrameOption[spec["frame_options"]], override=True
        ),
        content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
        referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
            referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
        ),
    )


#: The page bucket's construct id; also the prefix of its server access logs in the shared log
#: bucket (SecureBucket logs under "<id lower-cased>/").
PAGE_BUCKET_ID = "WorklistPage"
ACCESS_LOG_PREFIX = f"{PAGE_BUCKET_ID.lower()}/"


class WorklistSite(Construct):
    """The page's bucket, its distribution and (after :meth:`deploy_page`) its files."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: WorklistConfig,
        api_origin: str,
        auth_origin: str,
        access_log_bucket: s3.IBucket,
        noncurrent_version_days: int,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the worklist page's files (read by CloudFront through OAC)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        # An imported reference: aws-cdk-lib would otherwise grant log delivery on the shared
        # log bucket without conditions across stacks; DataLake.admit_access_logs grants it.
        log_bucket = s3.Bucket.from_bucket_attributes(
            self,
            "AccessLogBucket",
            bucket_arn=access_log_bucket.bucket_arn,
            bucket_name=access_log_bucket.bucket_name,
        )
        self.bucket = SecureBucket(
            self,
            PAGE_BUCKET_ID,
            encryption_key=self.key,
            access_log_bucket=log_bucket,
            lifecycle=LifecyclePolicy(None, noncurrent_version_days),
            retain_on_delete=retain,
        ).bucket
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment="Security headers of the worklist page",
            security_headers_behavior=security_headers(api_origin, auth_origin),
        )
        origin = origins.S3BucketOrigin.with_origin_access_control(self.bucket)
        behavior: Mapping[str, Any] = {
            "origin": origin,
            "viewer_protocol_policy": cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            "allowed_methods": cloudfront.AllowedMethods.ALLOW_GET_HEAD,
            "response_headers_policy": headers,
            "compress": True,
        }
        custom: dict[str, Any] = {}
        if config.domain_name is not None and config.certificate_arn is not None:
            custom = {
                "domain_names": [config.domain_name],
                "certificate": acm.Certificate.from_certificate_arn(
                    self, "Certificate", config.certificate_arn
                ),
                "minimum_protocol_version": MINIMUM_TLS,
                "ssl_support_method": cloudfront.SSLMethod.SNI,
            }
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="The care team's readmission worklist page",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED, **behavior
            ),
            additional_behaviors={
                # The page reads its settings at every load: never from a cache.
                CONFIG_FILE: cloudfront.BehaviorOptions(
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED, **behavior
                )
            },
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            web_acl_id=config.web_acl_arn,
            **custom,
        )
        domain = config.domain_name or self.distribution.distribution_domain_name
        self.origin = f"https://{domain}"
        self.url = f"{self.origin}/"
        self._acknowledge(config)

    def deploy_page(self, page_config: Mapping[str, Any]) -> s3_deployment.BucketDeployment:
        """Upload ``web/worklist`` and ``config.json`` (tokens resolved at deploy time)."""
        deployment = s3_deployment.BucketDeployment(
            self,
            "Deploy",
            destination_bucket=self.bucket,
            sources=[
                s3_deployment.Source.asset(str(WEB_ROOT), exclude=list(PAGE_EXCLUDES)),
                s3_deployment.Source.json_data(CONFIG_FILE, dict(page_config)),
            ],
            distribution=self.distribution,
            distribution_paths=["/*"],
            prune=True,
            memory_limit=256,
        )
        self._acknowledge_deployment()
        return deployment

    def _acknowledge(self, config: WorklistConfig) -> None:
        distribution = self.distribution
        acknowledge(
            distribution,
            "The distribution serves only the page's static files (no patient data, which "
            "only the data API returns; its API Gateway access logs record every call with the "
            "user's id). CloudFront's standard logs need an ACL-enabled bucket, which the "
            "platform's buckets forbid (BucketOwnerEnforced).",
            "AwsSolutions-CFR3",
        )
        acknowledge(
            distribution,
            "No geographic restriction: care managers sign in from wherever the hospital "
            "works (home visits, other sites); access is by sign-in and the care-team group, "
            "and a country rule, where wanted, belongs in the configured web ACL.",
            "AwsSolutions-CFR1",
        )
        if config.web_acl_arn is None:
            acknowledge(
                distribution,
                "This stage configures no web ACL (worklist.web_acl_arn is null): a CloudFront "
                "web ACL must live in us-east-1 and is created outside this stack; the page is "
                "static and its API needs a user-pool token. Production sets one.",
                "AwsSolutions-CFR2",
            )
        if config.domain_name is None:
            acknowledge(
                distribution,
                "This stage has no custom domain (worklist.domain_name is null), so CloudFront "
                "serves *.cloudfront.net with its default certificate, where it always "
                "negotiates its TLSv1 policy; production stages set a domain and certificate "
                "and get TLSv1.2_2021.",
                "AwsSolutions-CFR4",
            )

    def _acknowledge_deployment(self) -> None:
        """The BucketDeployment's handler is a singleton Lambda at the stack's root."""
        stack = Stack.of(self)
        bucket_id = stack.get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]
        for child in stack.node.children:
            if not child.node.id.startswith("Custom::CDKBucketDeployment"):
                continue
            acknowledge(
                child,
                "CDK's BucketDeployment handler, a custom resource CloudFormation invokes only "
                "while deploying this stack (a failure fails and rolls back the deployment, "
                "which reports it) to copy the page's static files; its runtime, "
                "managed basic-execution policy, wildcard object actions on the page bucket "
                "and the asset bucket, and cloudfront:CreateInvalidation/GetInvalidation on "
                "'*' (as CDK grants them) are CDK's; the files hold no patient data.",
                "AwsSolutions-L1",
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                "AwsSolutions-IAM5[Action::s3:GetBucket*]",
                "AwsSolutions-IAM5[Action::s3:GetObject*]",
                "AwsSolutions-IAM5[Action::s3:List*]",
                "AwsSolutions-IAM5[Action::s3:Abort*]",
                "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
                "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
                f"AwsSolutions-IAM5[Resource::{_asset_bucket_objects(stack)}]",
                f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]",
                "AwsSolutions-IAM5[Resource::*]",
                "HIPAA.Security-LambdaConcurrency",
                "HIPAA.Security-LambdaDLQ",
                "HIPAA.Security-LambdaInsideVPC",
                "HIPAA.Security-IAMNoInlinePolicy",
            )


def _asset_bucket_objects(stack: Stack) -> str:
    """The CDK bootstrap asset bucket's objects as cdk-nag prints them for this stack: the
    account, Region and partition are literals where the stack's environment fixes them."""

    def literal(value: str, placeholder: str) -> str:
        return placeholder if Token.is_unresolved(value) else value

    account = literal(stack.account, "<AWS::AccountId>")
    region = literal(stack.region, "<AWS::Region>")
    partition = literal(stack.partition, "<AWS::Partition>")
    return f"arn:{partition}:s3:::cdk-hnb659fds-assets-{account}-{region}/*"
