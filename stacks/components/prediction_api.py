"""The prediction API: API Gateway (REST) in front of the predict Lambda.

IAM (SigV4) authentication by default, or API keys with a usage plan; a JSON-schema request
model derived from ``contracts.encounter`` checked by API Gateway before the Lambda runs (the
Lambda still validates fully); TLS 1.2 or later with forward-secret ciphers only; stage
throttling; access logs without bodies; X-Ray; an optional WAF web ACL; and no caching: a
per-patient prediction must never come from a cache.

The CDS Hooks routes (``GET /cds-services``, ``POST /cds-services/readmission-risk``, issue
#18) are served by the same function behind a Lambda authorizer (``CdsHooksAccess``) instead
of IAM: the EHR authenticates with its own signed JWT, as CDS Hooks specifies.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct, IConstruct

from contracts import serving
from contracts.encounter import FieldKind, FieldSpec, model_input_fields
from lambdas.cds_authorizer import settings as authorizer_env
from lambdas.cds_hooks.service import EXPIRES_ATTRIBUTE, JTI_ATTRIBUTE, SERVICE_ID, SERVICES_PATH
from lambdas.predict import settings as predict_env
from stacks.components.grants import grant_key
from stacks.components.log_groups import encrypted_log_group
from stacks.components.platform_function import PlatformFunction
from stacks.config import ApiConfig, CdsHooksConfig
from stacks.nag import acknowledge
from stacks.wildcards import acknowledge_wildcards

STAGE_NAME = "v1"
PATIENT_ID = serving.PATIENT_ID
ENCOUNTER_ID = serving.ENCOUNTER_ID
#: Access log fields: who called what, when, and how it went; never a body or a header value.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "responseLatency": "$context.responseLatency",
    "sourceIp": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn",
    "apiKeyId": "$context.identity.apiKeyId",
    "xrayTraceId": "$context.xrayTraceId",
    # What each client negotiated, so a client that cannot do the TLS policy below shows up.
    "tlsVersion": "$context.tlsVersion",
    "cipherSuite": "$context.cipherSuite",
}
#: The API's TLS security policy: TLS 1.3, or TLS 1.2 with ECDHE + AES-GCM suites only (forward
#: secrecy, no CBC), hybrid post-quantum key exchange where the client offers it. A Regional
#: REST API otherwise gets ``TLS_1_0``. Enhanced (``SecurityPolicy_*``) policies need an endpoint
#: access mode; STRICT also rejects requests whose SNI host is not this API's.
#: https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-security-policies.html
#: https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-security-policies-list.html
TLS_SECURITY_POLICY = "SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09"
ENDPOINT_ACCESS_MODE = "STRICT"
#: WAF: requests per client IP per five minutes before the rate rule blocks.
WAF_RATE_LIMIT_PER_5_MIN = 3000
#: The common rule set blocks bodies over 8 KB; a discharge note is longer (MAX_BODY_BYTES).
WAF_BODY_SIZE_RULE = "SizeRestrictions_BODY"
#: AWS managed rule groups of the web ACL, in priority order (each blocks what it matches).
#: KnownBadInputs carries Log4JRCE (CVE-2021-44228) and other exploit-pattern rules.
WAF_MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
WAF_METRIC_NAMES = {
    "AWSManagedRulesCommonRuleSet": "common-rules",
    "AWSManagedRulesKnownBadInputsRuleSet": "known-bad-inputs",
}
#: Rules of a managed group that only count: the body-size rule (a discharge note is longer).
WAF_COUNTED_RULES = {"AWSManagedRulesCommonRuleSet": (WAF_BODY_SIZE_RULE,)}

NO_CACHE_REASON = (
    "Caching is deliberately off: predictions are per patient and must never be served "
    "from a cache (one patient's risk returned for another's request, or a stale score)."
)
NO_EXECUTION_LOGS_REASON = (
    "Execution logging is off on purpose: its messages quote request content (validation "
    "errors echo values), which is PHI. Access logs without bodies, X-Ray traces and the "
    "function's own PHI-free logs cover operations."
)


def acknowledge_stage(stage: IConstruct, no_cache_reason: str) -> None:
    """What every REST API stage of the platform acknowledges, the worklist's too: no cache
    (for the API's own reason), no execution logs (they quote PHI), no client certificate
    (the only backend is a Lambda proxy integration)."""
    acknowledge(stage, no_cache_reason, "HIPAA.Security-APIGWCacheEnabledAndEncrypted")
    acknowledge(
        stage,
        NO_EXECUTION_LOGS_REASON,
        "AwsSolutions-APIG6",
        "HIPAA.Security-APIGWExecutionLoggingEnabled",
    )
    acknowledge(
        stage,
        "The only backend is a Lambda proxy integration inside AWS; a client certificate "
        "authenticates HTTP backends, of which there are none.",
        "HIPAA.Security-APIGWSSLEnabled",
    )


def _value_schema(spec: FieldSpec) -> dict[str, Any]:
    """The JSON schema (draft 4) of one model-input field, as the Lambda's request model."""
    schema: dict[str, Any]
    if spec.kind == FieldKind.NUMERIC:
        schema = {"type": "integer" if spec.dtype == "int" else "number"}
        if spec.valid_min is not None:
            schema["minimum"] = spec.valid_min
        if spec.valid_max is not None:
            schema["maximum"] = spec.valid_max
    elif spec.kind == FieldKind.CATEGORICAL and spec.categories is not None:
        schema = {"type": "string", "enum": list(spec.categories)}
    elif spec.kind == FieldKind.CATEGORICAL:
        schema = {"type": "string", "minLength": 1, "maxLength": serving.MAX_CATEGORY_CHARS}
    elif spec.kind == FieldKind.CODE_SEQUENCE:
        schema = {
            "type": "array",
            "maxItems": serving.MAX_CODES_PER_SEQUENCE,
            "items": {"type": "string", "minLength": 1, "maxLength": serving.MAX_CODE_CHARS},
        }
    elif spec.kind == FieldKind.TEXT:
        schema = {"type": "string", "maxLength": serving.MAX_NOTE_CHARS}
    else:
        raise ValueError(f"no request schema for field kind {spec.kind.value}")
    if spec.nullable:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


def encounter_request_schema() -> dict[str, Any]:
    """One encounter: raw identifiers and every model-input field of the contract."""
    identifier = {"type": ["string", "integer"]}
    fields = model_input_fields()
    return {
        "type": "object",
        "properties": {
            PATIENT_ID: identifier,
            ENCOUNTER_ID: {"type": ["string", "integer", "null"]},
            **{spec.name: _value_schema(spec) for spec in fields},
        },
        "required": [PATIENT_ID, *(spec.name for spec in fields if not spec.nullable)],
        "additionalProperties": False,
    }


def predict_request_schema() -> dict[str, Any]:
    """``POST /predict``: one encounter, or ``{"instances": [encounters]}``."""
    record = encounter_request_schema()
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "PredictRequest",
        "oneOf": [
            record,
            {
                "type": "object",
                "properties": {
                    # No maxItems: an oversized batch is the Lambda's 413, as the API documents.
                    serving.INSTANCES_KEY: {"type": "array", "minItems": 1, "items": record}
                },
                "required": [serving.INSTANCES_KEY],
                "additionalProperties": False,
            },
        ],
    }


def _json_schema(schema: dict[str, Any]) -> apigateway.JsonSchema:
    """A plain JSON-schema document as CDK's typed ``JsonSchema``."""
    types = {
        "object": apigateway.JsonSchemaType.OBJECT,
        "array": apigateway.JsonSchemaType.ARRAY,
        "string": apigateway.JsonSchemaType.STRING,
        "integer": apigateway.JsonSchemaType.INTEGER,
        "number": apigateway.JsonSchemaType.NUMBER,
        "null": apigateway.JsonSchemaType.NULL,
        "boolean": apigateway.JsonSchemaType.BOOLEAN,
    }
    kind = schema.get("type")
    kwargs: dict[str, Any] = {}
    if isinstance(kind, list):
        kwargs["type"] = [types[k] for k in kind]
    elif kind is not None:
        kwargs["type"] = types[kind]
    if "$schema" in schema:
        kwargs["schema"] = apigateway.JsonSchemaVersion.DRAFT4
    simple = {
        "title": "title",
        "enum": "enum",
        "minimum": "minimum",
        "maximum": "maximum",
        "minLength": "min_length",
        "maxLength": "max_length",
        "minItems": "min_items",
        "maxItems": "max_items",
        "required": "required",
        "additionalProperties": "additional_properties",
    }
    for key, name in simple.items():
        if key in schema:
            kwargs[name] = schema[key]
    if "properties" in schema:
        kwargs["properties"] = {k: _json_schema(v) for k, v in schema["properties"].items()}
    if "items" in schema:
        kwargs["items"] = _json_schema(schema["items"])
    if "oneOf" in schema:
        kwargs["one_of"] = [_json_schema(s) for s in schema["oneOf"]]
    return apigateway.JsonSchema(**kwargs)


def cds_hook_request_schema() -> dict[str, Any]:
    """``POST /cds-services/readmission-risk``: what API Gateway checks before the Lambda
    (CDS Hooks 2.0 HTTP request: hook, hookInstance and context REQUIRED)."""
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "CdsHookRequest",
        "type": "object",
        "properties": {
            "hook": {"type": "string", "enum": ["encounter-discharge"]},
            "hookInstance": {"type": "string", "minLength": 1, "maxLength": 128},
            "context": {
                "type": "object",
                "properties": {
                    "userId": {"type": "string", "minLength": 1},
                    "patientId": {"type": "string", "minLength": 1, "maxLength": 64},
                    "encounterId": {"type": "string", "minLength": 1, "maxLength": 64},
                },
                "required": ["userId", "patientId", "encounterId"],
            },
            "prefetch": {"type": "object"},
        },
        "required": ["hook", "hookInstance", "context"],
    }


#: Why the authorizer runs outside the VPC (the platform VPC has no route to the internet).
AUTHORIZER_OUTSIDE_VPC_REASON = (
    "The CDS Hooks authorizer must fetch each trusted EHR's JWKS from the EHR's public HTTPS "
    "URL (cds_hooks.issuers), and the platform VPC has no NAT by design. It handles no patient "
    "data: it reads only the Authorization header's JWT (the EHR's client identity, never a "
    "patient's) and reaches nothing inside the VPC."
)
REPLAY_TABLE_REASON = (
    "The replay table holds one short-lived item per CDS client JWT (its jti, deleted by TTL "
    "after the token expires): nothing a backup plan would need to restore (point-in-time "
    "recovery is on all the same)."
)


class CdsHooksAccess(Construct):
    """Who may call the CDS Hooks routes: the JWT authorizer and the jti replay table.

    Exposes ``authorizer`` (API Gateway REQUEST authorizer on the Authorization header, its
    answers cached ``authorizer_cache_ttl_s``), ``function`` (the authorizer's
    :class:`PlatformFunction`) and ``replay_table`` (grant the service ``dynamodb:PutItem``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CdsHooksConfig,
        function_name: str,
        key: kms.IKey,
        log_retention_days: int,
        retain_logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        issuers = {issuer.iss: issuer.jwks_url for issuer in config.issuers}
        self.function = PlatformFunction(
            self,
            "Authorizer",
            folder="cds_authorizer",
            function_name=function_name,
            description="Verifies the EHR's CDS Hooks JWT for the CDS routes",
            environment=authorizer_env.ENVIRONMENT.environment(
                {authorizer_env.ISSUERS_ENV: json.dumps(issuers, sort_keys=True)}
            ),
            vpc=None,
            subnets=None,
            security_group=None,
            outside_vpc_reason=AUTHORIZER_OUTSIDE_VPC_REASON,
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain_logs,
            timeout=Duration.seconds(5),
            memory_mb=256,
            # API Gateway calls it at most once per hook call (fewer with its cache).
            reserved_concurrency=config.throttle_burst,
        )
        self.authorizer = apigateway.RequestAuthorizer(
            self,
            "JwtAuthorizer",
            handler=self.function.function,
            # The cache key is the token itself: no answer is ever reused for another token.
            identity_sources=[apigateway.IdentitySource.header("Authorization")],
            results_cache_ttl=Duration.seconds(config.authorizer_cache_ttl_s),
        )
        self.replay_table = dynamodb.Table(
            self,
            "ReplayTable",
            partition_key=dynamodb.Attribute(
                name=JTI_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            time_to_live_attribute=EXPIRES_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(self.replay_table, REPLAY_TABLE_REASON, "HIPAA.Security-DynamoDBInBackupPlan")


class PredictionApi(Construct):
    """The predict Lambda and the REST API in front of it.

    Exposes ``function`` (a :class:`PlatformFunction`), ``api``, ``predict_method``,
    ``health_method`` and ``web_acl`` (``None`` unless enabled).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api_name: str,
        function_name: str,
        endpoint_name: str,
        api_config: ApiConfig,
        deid_secret: secretsmanager.ISecret,
        data_key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        log_retention_days: int,
        retain_logs: bool,
        cds_hooks: CdsHooksConfig | None = None,
        authorizer_function_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cds_access = (
            CdsHooksAccess(
                self,
                "CdsHooksAccess",
                config=cds_hooks,
                function_name=authorizer_function_name or f"{function_name}-cds-authorizer",
                key=key,
                log_retention_days=log_retention_days,
                retain_logs=retain_logs,
            )
            if cds_hooks is not None
            else None
        )
        cds_environment = (
            {}
            if cds_hooks is None or self.cds_access is None
            else {
                predict_env.REPLAY_TABLE_ENV: self.cds_access.replay_table.table_name,
                **(
                    {predict_env.WORKLIST_PAGE_URL_ENV: cds_hooks.worklist_page_url}
                    if cds_hooks.worklist_page_url
                    else {}
                ),
            }
        )
        self.function = PlatformFunction(
            self,
            "Predict",
            folder="predict",
            function_name=function_name,
            description="POST /predict, GET /health and the CDS Hooks routes of the API",
            environment=predict_env.ENVIRONMENT.environment(
                {
                    predict_env.ENDPOINT_NAME_ENV: endpoint_name,
                    predict_env.DEID_SECRET_ARN_ENV: deid_secret.secret_arn,
                    **cds_environment,
                }
            ),
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain_logs,
            timeout=Duration.seconds(15),
            memory_mb=1024,
            # Latency stays well under a second, so the stage's steady rate bounds concurrency.
            reserved_concurrency=api_config.throttle_rate_per_second,
        )
        self._grant(endpoint_name, deid_secret, data_key)
        access_logs = encrypted_log_group(
            self, "AccessLogs", key=key, days=log_retention_days, retain=retain_logs
        )
        use_api_keys = api_config.auth == "api_key"
        self.api = apigateway.RestApi(
            self,
            "Api",
            rest_api_name=api_name,
            description="30-day readmission risk predictions",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            cloud_watch_role=False,
            api_key_source_type=apigateway.ApiKeySourceType.HEADER if use_api_keys else None,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=api_config.throttle_rate_per_second,
                throttling_burst_limit=api_config.throttle_burst,
                method_options=self._cds_throttling(cds_hooks),
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
        self._require_tls(self.api)
        # API Gateway's own 400 for a body that fails the model: no validation detail, which
        # can quote the values sent.
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigateway.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={
                "application/json": '{"error":"invalid_request","request_id":"$context.requestId"}'
            },
        )
        method_options: dict[str, Any] = (
            {"authorization_type": apigateway.AuthorizationType.NONE, "api_key_required": True}
            if use_api_keys
            else {"authorization_type": apigateway.AuthorizationType.IAM}
        )
        integration = apigateway.LambdaIntegration(self.function.function, proxy=True)
        model = self.api.add_model(
            "PredictRequest",
            content_type="application/json",
            model_name="PredictRequest",
            schema=_json_schema(predict_request_schema()),
        )
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        self.predict_method = self.api.root.add_resource("predict").add_method(
            "POST",
            integration,
            request_models={"application/json": model},
            request_validator=validator,
            **method_options,
        )
        self.health_method = self.api.root.add_resource("health").add_method(
            "GET", integration, **method_options
        )
        self.cds_discovery_method: apigateway.Method | None = None
        self.cds_service_method: apigateway.Method | None = None
        if self.cds_access is not None:
            self._cds_routes(self.cds_access, integration, validator)
            self.cds_access.replay_table.grant(self.function.role, "dynamodb:PutItem")
        if use_api_keys:
            plan = self.api.add_usage_plan(
                "UsagePlan",
                name=f"{api_name}-clients",
                throttle=apigateway.ThrottleSettings(
                    rate_limit=api_config.throttle_rate_per_second,
                    burst_limit=api_config.throttle_burst,
                ),
            )
            plan.add_api_stage(stage=self.api.deployment_stage)
            plan.add_api_key(self.api.add_api_key("ClientKey", api_key_name=f"{api_name}-client"))
        self.web_acl = (
            self._web_acl(api_name, key, log_retention_days, retain_logs)
            if api_config.waf_enabled
            else None
        )
        self._acknowledge(use_api_keys, api_config.waf_enabled)

    @staticmethod
    def _cds_throttling(
        cds_hooks: CdsHooksConfig | None,
    ) -> dict[str, apigateway.MethodDeploymentOptions] | None:
        """The hook's own throttle (an EHR calls it once per discharge), under the stage's."""
        if cds_hooks is None:
            return None
        return {
            f"{SERVICES_PATH}/{SERVICE_ID}/POST": apigateway.MethodDeploymentOptions(
                throttling_rate_limit=cds_hooks.throttle_rate_per_second,
                throttling_burst_limit=cds_hooks.throttle_burst,
            )
        }

    def _cds_routes(
        self,
        access: CdsHooksAccess,
        integration: apigateway.LambdaIntegration,
        validator: apigateway.RequestValidator,
    ) -> None:
        """``GET /cds-services`` and ``POST /cds-services/readmission-risk`` behind the JWT
        authorizer, the hook's body checked against its model first."""
        options: dict[str, Any] = {
            "authorization_type": apigateway.AuthorizationType.CUSTOM,
            "authorizer": access.authorizer,
        }
        services = self.api.root.add_resource(SERVICES_PATH.strip("/"))
        self.cds_discovery_method = services.add_method("GET", integration, **options)
        model = self.api.add_model(
            "CdsHookRequest",
            content_type="application/json",
            model_name="CdsHookRequest",
            schema=_json_schema(cds_hook_request_schema()),
        )
        self.cds_service_method = services.add_resource(SERVICE_ID).add_method(
            "POST",
            integration,
            request_models={"application/json": model},
            request_validator=validator,
            **options,
        )

    @staticmethod
    def _require_tls(api: apigateway.RestApi) -> None:
        """Set the API's security policy on the L1 resource (the L2 RestApi has no prop)."""
        resource = api.node.default_child
        if not isinstance(resource, apigateway.CfnRestApi):
            raise TypeError("the REST API has no CfnRestApi to set the security policy on")
        resource.security_policy = TLS_SECURITY_POLICY
        resource.endpoint_access_mode = ENDPOINT_ACCESS_MODE

    def _grant(
        self, endpoint_name: str, deid_secret: secretsmanager.ISecret, data_key: kms.IKey
    ) -> None:
        role = self.function.role

        def arn(resource: str) -> str:
            return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"

        role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeAndDescribeTheEndpoint",
                actions=["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"],
                resources=[arn(f"endpoint/{endpoint_name}")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadServedModelVersion",
                actions=["sagemaker:DescribeEndpointConfig", "sagemaker:ListTags"],
                resources=[arn(f"endpoint-config/{endpoint_name}-*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadDeidentificationKey",
                actions=["secretsmanager:GetSecretValue"],
                resources=[deid_secret.secret_arn],
            )
        )
        grant_key(role, data_key)
        acknowledge_wildcards(
            role,
            "/health reads the version tags of the endpoint configs the deployer names "
            "<endpoint>-v<version>-<digest> at run time, and nothing else.",
            "Resource::*:endpoint-config/*-*",
        )

    def _web_acl(
        self, api_name: str, key: kms.IKey, log_retention_days: int, retain_logs: bool
    ) -> wafv2.CfnWebACL:
        """AWS managed rule groups (body size counted, not blocked), a per-IP rate limit, logs."""

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=False
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{api_name}-acl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(f"{api_name}-acl"),
            rules=[
                *(
                    wafv2.CfnWebACL.RuleProperty(
                        name=group,
                        priority=priority,
                        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                        statement=wafv2.CfnWebACL.StatementProperty(
                            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                                vendor_name="AWS",
                                name=group,
                                rule_action_overrides=[
                                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                                        name=rule,
                                        action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                                    )
                                    for rule in WAF_COUNTED_RULES.get(group, ())
                                ]
                                or None,
                            )
                        ),
                        visibility_config=visibility(WAF_METRIC_NAMES[group]),
                    )
                    for priority, group in enumerate(WAF_MANAGED_RULE_GROUPS)
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=len(WAF_MANAGED_RULE_GROUPS),
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=WAF_RATE_LIMIT_PER_5_MIN, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility("rate-limit"),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )
        # WAF only delivers to log groups named aws-waf-logs-*, given by ARN without ":*".
        log_group_name = f"aws-waf-logs-{api_name}"
        encrypted_log_group(
            self,
            "WafLogs",
            key=key,
            days=log_retention_days,
            retain=retain_logs,
            log_group_name=log_group_name,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=acl.attr_arn,
            log_destination_configs=[
                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_group_name}"
            ],
            # The SigV4 signature or API key is a credential: never in a log.
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": name})
                for name in ("authorization", "x-api-key")
            ],
        ).node.add_dependency(self.node.find_child("WafLogs"))
        return acl

    def _acknowledge(self, use_api_keys: bool, waf_enabled: bool) -> None:
        stage = self.api.deployment_stage
        acknowledge_stage(stage, NO_CACHE_REASON)
        acknowledge(
            self.api,
            "Callers are clinical applications with AWS identities: requests are SigV4-signed "
            "(IAM authorization) or, where configured, carry a usage-plan API key; the CDS "
            "Hooks routes are called by EHRs with their own signed JWTs, verified by a Lambda "
            "authorizer as CDS Hooks 2.0 specifies; there are no end-user sign-ins for a "
            "Cognito user pool to serve.",
            "AwsSolutions-COG4",
        )
        if use_api_keys:
            acknowledge(
                self.api,
                "This stage is configured (api.auth = api_key) for API keys with a usage plan "
                "instead of IAM: every method requires a key.",
                "AwsSolutions-APIG4",
            )
        if not waf_enabled:
            acknowledge(
                stage,
                "The WAF web ACL is optional by stage configuration (api.waf_enabled) and off "
                "here: the API is authenticated and throttled; production enables it.",
                "AwsSolutions-APIG3",
            )
