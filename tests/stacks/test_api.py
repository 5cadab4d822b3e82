"""The API: IAM auth, body validation against the contract, TLS, throttling, logs, WAF by stage,
and the account's API Gateway CloudWatch Logs role (created, or relied on where it exists)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from app import add_stacks, build_app
from contracts import serving
from contracts.encounter import model_input_fields
from stacks.components.prediction_api import ACCESS_LOG_FIELDS, predict_request_schema
from stacks.config import ConfigError, load_stage_config
from tests.stacks.cdk_helpers import app_for_stage, cdk_context
from tests.stacks.conftest import Synthesized, as_list, flatten, only

#: The security policies a Regional REST API accepts that refuse TLS 1.0 and 1.1 (API Gateway's
#: "Supported security policies" table for Regional and private APIs; the default is TLS_1_0).
#: https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-security-policies-list.html
REGIONAL_TLS12_OR_LATER = {
    "TLS_1_2",
    "SecurityPolicy_TLS13_1_3_2025_09",
    "SecurityPolicy_TLS13_1_3_FIPS_2025_09",
    "SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09",
    "SecurityPolicy_TLS13_1_2_FIPS_PFS_PQ_2025_09",
    "SecurityPolicy_TLS13_1_2_FIPS_PQ_2025_09",
    "SecurityPolicy_TLS13_1_2_PQ_2025_09",
    "SecurityPolicy_TLS13_1_2_2021_06",
}
#: What the account's logging role may do: write logs, never read them (no Get/FilterLogEvents).
LOG_WRITE_ACTIONS = {
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
}


def _methods(template: Template) -> dict[str, dict[str, Any]]:
    """/predict and /health by HTTP method (the CDS Hooks routes are test_api_cds.py's)."""
    return {
        m["Properties"]["HttpMethod"]: m["Properties"]
        for m in template.find_resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["AuthorizationType"] != "CUSTOM"
    }


def test_every_method_requires_sigv4_by_default(dev: Synthesized) -> None:
    every = [m["Properties"] for m in dev["Api"].find_resources("AWS::ApiGateway::Method").values()]
    signed = [m for m in every if m["AuthorizationType"] == "AWS_IAM"]
    assert sorted(m["HttpMethod"] for m in signed) == ["GET", "POST"]
    for method in every:
        assert method["Integration"]["Type"] == "AWS_PROXY"
    # The others are the CDS Hooks routes, behind the EHR-JWT authorizer (test_api_cds.py).
    assert [m["AuthorizationType"] for m in every if m not in signed] == ["CUSTOM", "CUSTOM"]


def test_predict_body_is_validated_against_the_contract_model(dev: Synthesized) -> None:
    api = dev["Api"]
    post = _methods(api)["POST"]
    validator_id = post["RequestValidatorId"]["Ref"]
    validator = api.find_resources("AWS::ApiGateway::RequestValidator")[validator_id]
    assert validator["Properties"]["ValidateRequestBody"] is True
    model = only(api, "AWS::ApiGateway::Model", {"Name": "PredictRequest"})
    assert model["ContentType"] == "application/json"
    schema = model["Schema"]
    single, batch = schema["oneOf"]
    assert "maxItems" not in batch["properties"]["instances"]
    assert batch["properties"]["instances"]["minItems"] == 1
    assert single["additionalProperties"] is False
    assert set(single["properties"]) == {"patient_id", "encounter_id"} | {
        spec.name for spec in model_input_fields()
    }
    models = api.find_resources(
        "AWS::ApiGateway::Model", {"Properties": {"Name": "PredictRequest"}}
    )
    assert post["RequestModels"] == {"application/json": {"Ref": next(iter(models))}}


def test_schema_bounds_and_vocabularies_come_from_the_contract() -> None:
    record = predict_request_schema()["oneOf"][0]
    assert record["properties"]["age_years"] == {"type": "integer", "minimum": 0, "maximum": 130}
    assert record["properties"]["sex"] == {"type": "string", "enum": ["F", "M", "unknown"]}
    assert record["properties"]["days_since_last_discharge"]["type"] == ["number", "null"]
    assert "days_since_last_discharge" not in record["required"]
    assert record["required"][0] == "patient_id"
    assert record["properties"]["diagnosis_codes"]["maxItems"] == serving.MAX_CODES_PER_SEQUENCE


def test_stage_throttles_traces_and_logs_without_bodies(
    dev: Synthesized, prod: Synthesized
) -> None:
    stage = only(dev["Api"], "AWS::ApiGateway::Stage")
    assert stage["StageName"] == "v1"
    assert stage["TracingEnabled"] is True
    (settings,) = [s for s in stage["MethodSettings"] if s["ResourcePath"] == "/*"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (50, 100)
    assert settings.get("CachingEnabled") is False
    assert settings.get("DataTraceEnabled") is False
    log_format = json.loads(stage["AccessLogSetting"]["Format"])
    assert log_format == ACCESS_LOG_FIELDS
    assert not any("body" in v.lower() for v in log_format.values())
    (prod_settings,) = [
        s
        for s in only(prod["Api"], "AWS::ApiGateway::Stage")["MethodSettings"]
        if s["ResourcePath"] == "/*"
    ]
    assert (prod_settings["ThrottlingRateLimit"], prod_settings["ThrottlingBurstLimit"]) == (
        200,
        400,
    )


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_api_refuses_tls_before_1_2(stage: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(stage)
    api = only(synthesized["Api"], "AWS::ApiGateway::RestApi")
    assert api["EndpointConfiguration"]["Types"] == ["REGIONAL"]
    assert api["SecurityPolicy"] in REGIONAL_TLS12_OR_LATER
    # An enhanced (SecurityPolicy_*) policy is refused without an endpoint access mode.
    assert api["SecurityPolicy"].startswith("SecurityPolicy_")
    assert api["EndpointAccessMode"] == "STRICT"
    log_format = json.loads(
        only(synthesized["Api"], "AWS::ApiGateway::Stage")["AccessLogSetting"]["Format"]
    )
    assert log_format["tlsVersion"] == "$context.tlsVersion"


def _logical_id(template: Template, resource_type: str) -> str:
    (logical_id,) = template.find_resources(resource_type)
    return logical_id


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_create_mode_sets_the_account_logging_role_before_the_stage(
    stage: str, request: pytest.FixtureRequest
) -> None:
    """A fresh account has no API Gateway CloudWatch role: a stage with access logging then
    fails to create. "create" sets it (AWS::ApiGateway::Account) before the stage."""
    template = request.getfixturevalue(stage)["Api"]
    resources = template.to_json()["Resources"]
    account_id = _logical_id(template, "AWS::ApiGateway::Account")
    account = resources[account_id]
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = resources[role_id]
    # A singleton of the account and region, shared by every API there: never deleted.
    assert account["DeletionPolicy"] == role["DeletionPolicy"] == "Retain"
    stage_resource = resources[_logical_id(template, "AWS::ApiGateway::Stage")]
    assert account_id in as_list(stage_resource["DependsOn"])
    assert _logical_id(template, "AWS::ApiGateway::RestApi") in as_list(account["DependsOn"])
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    # Permissions inline, so they stay with the retained role; write-only, this account only.
    (policy,) = role["Properties"]["Policies"]
    granted = policy["PolicyDocument"]["Statement"]
    assert {a for s in granted for a in as_list(s["Action"])} == LOG_WRITE_ACTIONS
    for statement in granted:
        for resource in as_list(statement["Resource"]):
            assert flatten(resource).startswith("arn:<ref>:logs:<ref>:<ref>:log-group:")
    assert not template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    )


def test_the_account_role_stays_nag_clean_when_synthesized_for_a_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cdk synth` gives the app a region, so policy ARNs hold literal partition and region;
    the role's acknowledgements must match those too, not only the session's
    environment-agnostic synthesis."""
    monkeypatch.delenv("CDK_DEPLOY_REGION", raising=False)
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    assembly = build_app(app_for_stage("dev", str(tmp_path))).synth()  # raises on findings
    template = Template.from_json(assembly.get_stack_by_name("Readmission-dev-Api").template)
    role_id = only(template, "AWS::ApiGateway::Account")["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    (policy,) = template.to_json()["Resources"][role_id]["Properties"]["Policies"]
    resources = [s["Resource"] for s in policy["PolicyDocument"]["Statement"]]
    assert all(flatten(r).startswith("arn:aws:logs:eu-west-1:<ref>:log-group:") for r in resources)


@pytest.fixture(scope="module")
def existing_role_stage() -> Template:
    context = copy.deepcopy(cdk_context())
    context["stages"]["dev"]["api"]["cloudwatch_role"] = "existing"
    app = App(context=context)
    stacks = add_stacks(app, load_stage_config(context, "dev"))
    return Template.from_stack(stacks["Api"])


def test_existing_mode_leaves_the_account_setting_alone(existing_role_stage: Template) -> None:
    existing_role_stage.resource_count_is("AWS::ApiGateway::Account", 0)
    roles = existing_role_stage.find_resources("AWS::IAM::Role")
    principals = {
        json.dumps(s["Principal"])
        for role in roles.values()
        for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    }
    assert not any("apigateway" in p for p in principals)
    stage = only(existing_role_stage, "AWS::ApiGateway::Stage")
    assert "DestinationArn" in stage["AccessLogSetting"]  # still logs, with the account's role


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "context.stages.dev.api.cloudwatch_role is missing"),
        ("maybe", r"context.stages.dev.api.cloudwatch_role='maybe' must be one of"),
        (True, "context.stages.dev.api.cloudwatch_role must be str, got bool"),
    ],
)
def test_cloudwatch_role_mode_is_required_and_checked(value: Any, message: str) -> None:
    context = copy.deepcopy(cdk_context())
    api = context["stages"]["dev"]["api"]
    if value is None:
        del api["cloudwatch_role"]
    else:
        api["cloudwatch_role"] = value
    with pytest.raises(ConfigError, match=message):
        load_stage_config(context, "dev")


def test_both_stages_create_the_role_as_configured() -> None:
    context = cdk_context()
    for stage in ("dev", "prod"):
        assert load_stage_config(context, stage).api.creates_cloudwatch_role


def test_gateway_validation_errors_echo_nothing(dev: Synthesized) -> None:
    response = only(dev["Api"], "AWS::ApiGateway::GatewayResponse")
    assert response["ResponseType"] == "BAD_REQUEST_BODY"
    assert response["ResponseTemplates"] == {
        "application/json": '{"error":"invalid_request","request_id":"$context.requestId"}'
    }


def test_waf_only_where_the_stage_enables_it(dev: Synthesized, prod: Synthesized) -> None:
    dev["Api"].resource_count_is("AWS::WAFv2::WebACL", 0)
    acl = only(prod["Api"], "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL"
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    managed = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert managed["RuleActionOverrides"] == [
        {"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}
    ]
    # Known bad inputs (Log4JRCE among them) block: nothing overridden to count.
    bad_inputs = rules["AWSManagedRulesKnownBadInputsRuleSet"]
    assert bad_inputs["OverrideAction"] == {"None": {}}
    assert "RuleActionOverrides" not in bad_inputs["Statement"]["ManagedRuleGroupStatement"]
    assert rules["RateLimitPerIp"]["Action"] == {"Block": {}}
    assert sorted(rule["Priority"] for rule in acl["Rules"]) == [0, 1, 2]
    prod["Api"].resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    logging = only(prod["Api"], "AWS::WAFv2::LoggingConfiguration")
    assert {f["SingleHeader"]["Name"] for f in logging["RedactedFields"]} == {
        "authorization",
        "x-api-key",
    }


def test_predict_function_reaches_only_its_endpoint_and_secret(dev: Synthesized) -> None:
    function = only(
        dev["Api"], "AWS::Lambda::Function", {"FunctionName": "readmission-dev-predict"}
    )
    assert function["Environment"]["Variables"]["ENDPOINT_NAME"] == "readmission-dev-endpoint"
    assert "DEID_SECRET_ARN" in function["Environment"]["Variables"]
    assert function["ReservedConcurrentExecutions"] == 50


@pytest.fixture(scope="module")
def api_key_stage() -> Template:
    context = copy.deepcopy(cdk_context())
    context["stages"]["dev"]["api"]["auth"] = "api_key"
    app = App(context=context)
    stacks = add_stacks(app, load_stage_config(context, "dev"))
    return Template.from_stack(stacks["Api"])


def test_api_key_mode_requires_a_key_under_a_usage_plan(api_key_stage: Template) -> None:
    for method in _methods(api_key_stage).values():
        assert method["AuthorizationType"] == "NONE"
        assert method["ApiKeyRequired"] is True
    plan = only(api_key_stage, "AWS::ApiGateway::UsagePlan")
    assert plan["Throttle"] == {"RateLimit": 50, "BurstLimit": 100}
    api_key_stage.resource_count_is("AWS::ApiGateway::ApiKey", 1)
    api_key_stage.resource_count_is("AWS::ApiGateway::UsagePlanKey", 1)


EXAMPLE_RECORD: dict[str, Any] = {
    "patient_id": "MRN-0012345",
    "encounter_id": "ADM-98765",
    "age_years": 71,
    "sex": "F",
    "admission_type": "emergency",
    "admission_source": "emergency_department",
    "discharge_disposition": "home_health",
    "admitting_service": "cardiology",
    "length_of_stay_days": 5.5,
    "prior_admissions_12m": 2,
    "prior_ed_visits_12m": 3,
    "prior_outpatient_visits_12m": None,
    "days_since_last_discharge": 41.0,
    "num_diagnoses": 9,
    "num_procedures": 1,
    "num_medications": 14,
    "num_lab_tests": 62,
    "num_abnormal_labs": 11,
    "hba1c_result": "above_7",
    "max_glucose_result": "normal",
    "charlson_index": 4,
    "diagnosis_codes": ["4280", "42731", "25000"],
    "procedure_codes": ["8856"],
    "medications": ["furosemide", "metoprolol"],
    "abnormal_labs": ["creatinine"],
    "note_text": None,
}


def _gateway_accepts(body: Any) -> bool:
    from jsonschema import Draft4Validator

    return Draft4Validator(predict_request_schema()).is_valid(body)


def _lambda_accepts(body: Any) -> bool:
    from pydantic import ValidationError

    from lambdas.predict.schema import PredictRequest

    try:
        PredictRequest.model_validate(body)
    except ValidationError:
        return False
    return True


def _changed(**changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_RECORD, **changes}


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (EXAMPLE_RECORD, True),
        ({"instances": [EXAMPLE_RECORD, _changed(patient_id=42)]}, True),
        ({"instances": [EXAMPLE_RECORD] * serving.MAX_BATCH_SIZE}, True),
        # The Lambda answers an oversized batch with 413; the gateway lets it through.
        ({"instances": [EXAMPLE_RECORD] * (serving.MAX_BATCH_SIZE + 1)}, True),
        ({"instances": []}, False),
        (_changed(age_years=131), False),
        (_changed(age_years=70.5), False),
        (_changed(sex="female"), False),
        (_changed(unexpected_field=1), False),
        ({k: v for k, v in EXAMPLE_RECORD.items() if k != "patient_id"}, False),
        ({k: v for k, v in EXAMPLE_RECORD.items() if k != "note_text"}, True),
        (["not", "an", "object"], False),
    ],
)
def test_gateway_model_agrees_with_the_lambdas_request_model(body: Any, accepted: bool) -> None:
    assert _gateway_accepts(body) is accepted
    # API Gateway must never reject what the Lambda would accept.
    if _lambda_accepts(body):
        assert _gateway_accepts(body)
