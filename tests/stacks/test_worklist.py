"""The worklist stack: private bucket behind CloudFront (OAC, TLS 1.2_2021 with a domain,
security headers, WAF by ARN), Cognito sign-in (no self sign-up, MFA and threat protection by
stage, SAML federation, code-grant public client, care-team group), the data API behind a
Cognito authorizer with CORS for the page only and read-only table access; cdk-nag clean.

The worklist table comes from batch scoring's stack; here a test stack provides one like it
(CMK-encrypted, day/entry keys), passed across stacks as the app will.
"""

from __future__ import annotations

from json import dumps
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from contracts.worklist import KEY_DAY, KEY_ENTRY
from stacks.config import load_stage_config
from stacks.nag import acknowledge, apply_compliance_checks
from stacks.network_stack import NetworkStack
from stacks.worklist_stack import WorklistStack
from tests.stacks.cdk_helpers import app_for_stage, cdk_context
from tests.stacks.conftest import statements

#: What cdk-nag reports on the test's plain stand-ins (the real ones live in other stacks).
STAND_IN_RULES = (
    "AwsSolutions-S1",
    "AwsSolutions-S10",
    "AwsSolutions-DDB3",
    "HIPAA.Security-DynamoDBAutoScalingEnabled",
    "HIPAA.Security-DynamoDBInBackupPlan",
    "HIPAA.Security-DynamoDBPITREnabled",
    "HIPAA.Security-S3BucketLoggingEnabled",
    "HIPAA.Security-S3BucketPublicReadProhibited",
    "HIPAA.Security-S3BucketPublicWriteProhibited",
    "HIPAA.Security-S3BucketReplicationEnabled",
    "HIPAA.Security-S3BucketSSLRequestsOnly",
    "HIPAA.Security-S3BucketVersioningEnabled",
    "HIPAA.Security-S3DefaultEncryptionKMS",
)
READ_ACTIONS = {
    "dynamodb:BatchGetItem",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:Query",
    "dynamodb:GetItem",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
}


def build(stage: str, outdir: Path) -> Template:
    """The stage's worklist stack, synthesized with cdk-nag on it (raises on any finding)."""
    app: App = app_for_stage(stage, str(outdir))
    config = load_stage_config(cdk_context(), stage)
    network = NetworkStack(app, "Network", config=config)
    data = Stack(app, "Data")
    table = dynamodb.Table(
        data,
        "Worklist",
        partition_key=dynamodb.Attribute(name=KEY_DAY, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=KEY_ENTRY, type=dynamodb.AttributeType.STRING),
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=kms.Key(data, "TableKey", enable_key_rotation=True),
    )
    logs = s3.Bucket(data, "AccessLogs")
    acknowledge(
        data,
        "The test's stand-in for batch scoring's table and the access-log bucket.",
        *STAND_IN_RULES,
    )
    stack = WorklistStack(
        app, "Worklist", config=config, network=network.network, table=table, access_log_bucket=logs
    )
    apply_compliance_checks(app)
    app.synth()
    return Template.from_stack(stack)


@pytest.fixture(scope="module", params=["dev", "prod"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return request.param, build(request.param, tmp_path_factory.mktemp(f"worklist-{request.param}"))


def resources(template: Template, kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.find_resources(kind).values()]


def test_cloudfront_serves_the_private_bucket_through_oac(built) -> None:
    stage, template = built
    template.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    (distribution,) = resources(template, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    origin = config["Origins"][0]
    assert "OriginAccessControlId" in origin
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    (bucket,) = [
        r["Properties"]
        for logical_id, r in template.find_resources("AWS::S3::Bucket").items()
        if logical_id.startswith("SiteWorklistPageBucket")
    ]
    assert (
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "aws:kms"
    )
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    policy = dumps(resources(template, "AWS::S3::BucketPolicy"))
    assert "cloudfront.amazonaws.com" in policy
    assert "AWS:SourceArn" in policy
    if stage == "prod":
        assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
        assert config["ViewerCertificate"]["SslSupportMethod"] == "sni-only"
        assert config["Aliases"] == ["worklist.example.org"]
        assert config["WebACLId"].startswith("arn:aws:wafv2:us-east-1:")
    else:
        assert "WebACLId" not in config


def test_security_headers_policy(built) -> None:
    _, template = built
    (policy,) = resources(template, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = dumps(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert "unsafe-inline" not in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "execute-api" in csp
    assert "amazoncognito.com" in csp
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"


def test_user_pool_has_no_self_sign_up_and_mfa_by_stage(built) -> None:
    stage, template = built
    (pool,) = resources(template, "AWS::Cognito::UserPool")
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == ("ON" if stage == "prod" else "OPTIONAL")
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    mode = pool["UserPoolAddOns"]["AdvancedSecurityMode"]
    assert mode == ("ENFORCED" if stage == "prod" else "AUDIT")
    template.has_resource_properties("AWS::Cognito::UserPoolGroup", {"GroupName": "care-team"})
    template.resource_count_is("AWS::Cognito::UserPoolDomain", 1)


def test_page_client_is_public_code_grant_only(built) -> None:
    stage, template = built
    (client,) = resources(template, "AWS::Cognito::UserPoolClient")
    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email"}
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    if stage == "prod":
        assert client["CallbackURLs"] == ["https://worklist.example.org/"]
        assert client["SupportedIdentityProviders"] == ["Hospital"]
        template.has_resource_properties(
            "AWS::Cognito::UserPoolIdentityProvider",
            {"ProviderType": "SAML", "ProviderName": "Hospital"},
        )
    else:
        assert client["SupportedIdentityProviders"] == ["COGNITO"]
        template.resource_count_is("AWS::Cognito::UserPoolIdentityProvider", 0)


def test_data_api_is_behind_the_cognito_authorizer_with_cors_for_the_page(built) -> None:
    stage, template = built
    template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {"Type": "COGNITO_USER_POOLS", "IdentitySource": "method.request.header.Authorization"},
    )
    methods = resources(template, "AWS::ApiGateway::Method")
    gets = [m for m in methods if m["HttpMethod"] == "GET"]
    assert len(gets) == 3
    assert all(m["AuthorizationType"] == "COGNITO_USER_POOLS" for m in gets)
    options = [m for m in methods if m["HttpMethod"] == "OPTIONS"]
    assert len(options) == 3
    assert all(m["Integration"]["Type"] == "MOCK" for m in options)
    allowed = dumps([m["Integration"]["IntegrationResponses"] for m in options])
    if stage == "prod":
        assert "'https://worklist.example.org'" in allowed
    assert "'*'" not in allowed
    responses = resources(template, "AWS::ApiGateway::GatewayResponse")
    unauthorized = [r for r in responses if r["ResponseType"] == "UNAUTHORIZED"]
    assert unauthorized
    assert "Access-Control-Allow-Origin" in dumps(unauthorized[0]["ResponseParameters"])


def test_function_reads_the_table_and_knows_the_page_origin(built) -> None:
    stage, template = built
    (function,) = [
        f for f in resources(template, "AWS::Lambda::Function")
        if f.get("Handler") == "lambdas.worklist_api.app.lambda_handler"
    ]  # fmt: skip
    env = function["Environment"]["Variables"]
    assert env["WORKLIST_ACCESS_GROUP"] == "care-team"
    if stage == "prod":
        assert env["WORKLIST_ALLOWED_ORIGIN"] == "https://worklist.example.org"
    actions: set[str] = set()
    for statement in statements(template, "DataApiFunctionRole"):
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    dynamo = {a for a in actions if a.startswith("dynamodb:")}
    assert dynamo
    assert dynamo <= READ_ACTIONS, dynamo - READ_ACTIONS
    assert "kms:Decrypt" in actions


def test_page_is_deployed_with_its_config(built) -> None:
    _, template = built
    deployments = template.find_resources("Custom::CDKBucketDeployment")
    assert len(deployments) == 1
    (deployment,) = deployments.values()
    assert deployment["Properties"]["DistributionPaths"] == ["/*"]


def test_only_the_distribution_may_decrypt_the_page(built) -> None:
    _, template = built
    keys = template.find_resources("AWS::KMS::Key")
    (site_key,) = [k for logical_id, k in keys.items() if logical_id.startswith("SiteKey")]
    cloudfront = [
        s
        for s in site_key["Properties"]["KeyPolicy"]["Statement"]
        if "cloudfront.amazonaws.com" in dumps(s.get("Principal", {}))
    ]
    assert cloudfront
    assert all("kms:Decrypt" in dumps(s["Action"]) for s in cloudfront)
    assert all("AWS:SourceArn" in dumps(s["Condition"]) for s in cloudfront)
