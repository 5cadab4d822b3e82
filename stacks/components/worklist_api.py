"""The worklist's data API: the worklist Lambda behind its own REST API, with a Cognito user
pool authorizer, read-only access to the worklist table, and CORS for the page's origin only.

Its own REST API rather than routes on the prediction API: that API serves machine clients
with IAM (SigV4) or API keys under a regional WAF and throttles sized for scoring traffic;
the worklist serves browsers with user-pool tokens and needs CORS. Separate APIs keep each
one's authorization, throttling, gateway responses and access logs simple and separately
auditable.

How the authorizer works: API Gateway validates the ID token in ``Authorization`` (signature,
issuer = the user pool, audience = an app client of the pool, expiry) and answers 401 itself;
the Lambda then requires the care-team group from the claims (403 otherwise). With no
authorization scopes on the methods the authorizer takes the ID token, which carries
``cognito:groups``:
https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-enable-cognito-user-pool.html
https://docs.aws.amazon.com/cognito/latest/developerguide/user-pool-accessing-resources-api-gateway-and-lambda.html
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from lambdas.worklist_api import settings as worklist_env
from stacks.components.log_groups import encrypted_log_group
from stacks.components.platform_function import PlatformFunction
from stacks.components.prediction_api import (
    ENDPOINT_ACCESS_MODE,
    STAGE_NAME,
    TLS_SECURITY_POLICY,
    acknowledge_stage,
)
from stacks.config import WorklistConfig
from stacks.nag import acknowledge

#: Access log fields: who (the user's pseudonymous ``sub``) called which resource, how it went;
#: never the path itself (it carries the encounter key), a body or a header value.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLatency": "$context.responseLatency",
    "sourceIp": "$context.identity.sourceIp",
    "user": "$context.authorizer.claims.sub",
    "authorizerError": "$context.authorizer.error",
    "xrayTraceId": "$context.xrayTraceId",
    "tlsVersion": "$context.tlsVersion",
}
#: The gateway's own 4xx/5xx (a missing or bad token is 401 before the Lambda runs): fixed
#: bodies and the page's origin, so that the browser lets the page read the status.
GATEWAY_RESPONSES = {
    "Unauthorized": (apigateway.ResponseType.UNAUTHORIZED, "401", "unauthorized"),
    "AccessDenied": (apigateway.ResponseType.ACCESS_DENIED, "403", "forbidden"),
    "Default4xx": (apigateway.ResponseType.DEFAULT_4_XX, None, "bad_request"),
    "Default5xx": (apigateway.ResponseType.DEFAULT_5_XX, None, "unavailable"),
}
NO_CACHE_REASON = (
    "Caching is deliberately off: the worklist is per user group and per day, holds patient "
    "keys and scores, and must never be served from a shared cache."
)


class WorklistApi(Construct):
    """The worklist Lambda and its REST API. Exposes ``function``, ``api``, ``authorizer``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api_name: str,
        function_name: str,
        config: WorklistConfig,
        table: dynamodb.ITable,
        user_pool: cognito.IUserPool,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        log_retention_days: int,
        retain_logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PlatformFunction(
            self,
            "Function",
            folder="worklist_api",
            function_name=function_name,
            description="GET /worklist/days[/{day}[/entries/{key}]]: the care team's worklist",
            environment=worklist_env.ENVIRONMENT.environment(
                {
                    worklist_env.TABLE_NAME_ENV: table.table_name,
                    worklist_env.ACCESS_GROUP_ENV: config.access_group,
                }
            ),
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain_logs,
            timeout=Duration.seconds(10),
            memory_mb=512,
            reserved_concurrency=config.throttle_rate_per_second,
        )
        # Query, GetItem, BatchGetItem (and the table key's Decrypt): no write of any kind.
        table.grant_read_data(self.function.role)
        access_logs = encrypted_log_group(
            self, "AccessLogs", key=key, days=log_retention_days, retain=retain_logs
        )
        self.api = apigateway.RestApi(
            self,
            "Api",
            rest_api_name=api_name,
            description="The care team's readmission worklist (read-only)",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            cloud_watch_role=False,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=config.throttle_rate_per_second,
                throttling_burst_limit=config.throttle_burst,
                tracing_enabled=True,
                metrics_enabled=True,
                caching_enabled=False,
                data_trace_enabled=False,
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.custom(
                    "{" + ",".join(f'"{k}":"{v}"' for k, v in ACCESS_LOG_FIELDS.items()) + "}"
                ),
            ),
        )
        resource = self.api.node.default_child
        if not isinstance(resource, apigateway.CfnRestApi):
            raise TypeError("the REST API has no CfnRestApi to set the security policy on")
        resource.security_policy = TLS_SECURITY_POLICY
        resource.endpoint_access_mode = ENDPOINT_ACCESS_MODE
        self.authorizer = apigateway.CognitoUserPoolsAuthorizer(
            self,
            "Authorizer",
            cognito_user_pools=[user_pool],
            identity_source=apigateway.IdentitySource.header("Authorization"),
            results_cache_ttl=Duration.minutes(5),
        )
        integration = apigateway.LambdaIntegration(self.function.function, proxy=True)
        days = self.api.root.add_resource("worklist").add_resource("days")
        day = days.add_resource("{day}")
        entry = day.add_resource("entries").add_resource("{encounter_key}")
        self.resources = (days, day, entry)
        for path in self.resources:
            path.add_method(
                "GET",
                integration,
                authorization_type=apigateway.AuthorizationType.COGNITO,
                authorizer=self.authorizer,
            )
        self._acknowledge()

    @property
    def origin(self) -> str:
        """``https://<api id>.execute-api.<region>.<suffix>`` (no stage: the page's CSP)."""
        return f"https://{self.api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"

    def allow_origin(self, origin: str) -> None:
        """Let the page at ``origin`` call the API: CORS preflights, and the origin on the
        Lambda's answers and the gateway's own errors."""
        for name, value in worklist_env.ENVIRONMENT.subset(
            {worklist_env.ALLOWED_ORIGIN_ENV: origin}
        ).items():
            self.function.function.add_environment(name, value)
        for path in self.resources:
            path.add_cors_preflight(
                allow_origins=[origin],
                allow_methods=["GET"],
                allow_headers=["Authorization"],
                max_age=Duration.minutes(10),
            )
        for name, (kind, status, code) in GATEWAY_RESPONSES.items():
            self.api.add_gateway_response(
                name,
                type=kind,
                status_code=status,
                response_headers={
                    "Access-Control-Allow-Origin": f"'{origin}'",
                    "Vary": "'Origin'",
                    "Cache-Control": "'no-store'",
                },
                templates={
                    "application/json": (
                        '{"error":"' + code + '","request_id":"$context.requestId"}'
                    )
                },
            )
        for child in self.api.root.node.find_all():
            if isinstance(child, apigateway.Method) and child.http_method == "OPTIONS":
                acknowledge(
                    child,
                    "A CORS preflight: browsers send it without credentials, so it cannot be "
                    "authorized; it is a mock integration that only returns CORS headers for "
                    "the page's origin.",
                    "AwsSolutions-APIG4",
                    "AwsSolutions-COG4",
                )

    def _acknowledge(self) -> None:
        stage = self.api.deployment_stage
        acknowledge_stage(stage, NO_CACHE_REASON)
        acknowledge(
            stage,
            "No regional web ACL on this stage: every method needs a valid user-pool token "
            "(checked by API Gateway before any integration runs) of a care-team member, the "
            "API only reads, and the stage is throttled (worklist.throttle_*). The page in "
            "front of it has a CloudFront web ACL by configuration (worklist.web_acl_arn).",
            "AwsSolutions-APIG3",
        )
        acknowledge(
            self.api,
            "Every GET method of the API uses the Cognito user pool authorizer; request "
            "validation applies to bodies and there are none (GET only, parameters are "
            "validated by the function with fixed 400 answers).",
            "AwsSolutions-APIG2",
        )
