"""The CDS Hooks routes in AWS: JWT authorizer (REQUEST, cached on the token), the replay table,
the hook's request model and throttle, the stage config that feeds them.

API Gateway facts relied on, from its documentation:
- a REQUEST authorizer's cache key is its identity sources; with the Authorization header as
  the only one, an answer is reused only for the same token
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-lambda-authorizer-input.html);
- a cached policy is evaluated against each method invoked, so an Allow for exactly one
  ``methodArn`` never opens another route
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html);
- DynamoDB TTL deletes expired items asynchronously
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html), so the service
  never relies on an item being gone.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stacks.components.prediction_api import cds_hook_request_schema
from stacks.config import ConfigError, load_stage_config
from tests.stacks.cdk_helpers import cdk_context
from tests.stacks.conftest import Synthesized, as_list, only


def _cds_methods(dev: Synthesized) -> list[dict[str, Any]]:
    return [
        m["Properties"]
        for m in dev["Api"].find_resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["AuthorizationType"] == "CUSTOM"
    ]


def test_cds_routes_use_the_jwt_authorizer_cached_on_the_token(dev: Synthesized) -> None:
    api = dev["Api"]
    authorizer = only(api, "AWS::ApiGateway::Authorizer")
    assert authorizer["Type"] == "REQUEST"
    assert authorizer["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["AuthorizerResultTtlInSeconds"] == 60
    methods = _cds_methods(dev)
    assert sorted(m["HttpMethod"] for m in methods) == ["GET", "POST"]
    authorizer_id = next(iter(api.find_resources("AWS::ApiGateway::Authorizer")))
    for method in methods:
        assert method["AuthorizerId"] == {"Ref": authorizer_id}


def test_the_hook_body_is_checked_against_its_model_and_throttled(dev: Synthesized) -> None:
    api = dev["Api"]
    (post,) = [m for m in _cds_methods(dev) if m["HttpMethod"] == "POST"]
    models = api.find_resources(
        "AWS::ApiGateway::Model", {"Properties": {"Name": "CdsHookRequest"}}
    )
    assert post["RequestModels"] == {"application/json": {"Ref": next(iter(models))}}
    schema = next(iter(models.values()))["Properties"]["Schema"]
    assert schema["required"] == ["hook", "hookInstance", "context"]
    stage = only(api, "AWS::ApiGateway::Stage")
    settings = {s["ResourcePath"]: s for s in stage["MethodSettings"] if "ResourcePath" in s}
    hook = settings["/~1cds-services~1readmission-risk"]
    assert (hook["HttpMethod"], hook["ThrottlingRateLimit"], hook["ThrottlingBurstLimit"]) == (
        "POST",
        10,
        20,
    )


def test_the_authorizer_runs_outside_the_vpc_with_the_trusted_issuers(
    dev: Synthesized, dev_config: Any
) -> None:
    api = dev["Api"]
    authorizer = only(
        api, "AWS::Lambda::Function", {"FunctionName": "readmission-dev-cds-authorizer"}
    )
    assert "VpcConfig" not in authorizer
    assert authorizer["Handler"] == "lambdas.cds_authorizer.app.lambda_handler"
    issuers = json.loads(authorizer["Environment"]["Variables"]["CDS_ISSUERS"])
    assert issuers == {i.iss: i.jwks_url for i in dev_config.cds_hooks.issuers}
    predict = only(api, "AWS::Lambda::Function", {"FunctionName": "readmission-dev-predict"})
    assert "VpcConfig" in predict  # the function that sees patient data stays in the VPC
    assert "CDS_REPLAY_TABLE" in predict["Environment"]["Variables"]


def test_the_replay_table_is_encrypted_expires_and_takes_only_conditional_puts(
    dev: Synthesized,
) -> None:
    api = dev["Api"]
    table = only(api, "AWS::DynamoDB::Table")
    assert table["KeySchema"] == [{"AttributeName": "jti", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["SSESpecification"]["SSEType"] == "KMS"
    dynamodb_actions = set()
    for policy in api.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            dynamodb_actions |= {
                a for a in as_list(statement["Action"]) if a.startswith("dynamodb:")
            }
    assert dynamodb_actions == {"dynamodb:PutItem"}


def test_the_vpc_reaches_dynamodb_through_a_gateway_endpoint(dev: Synthesized) -> None:
    endpoints = dev["Network"].find_resources("AWS::EC2::VPCEndpoint")
    gateways = [
        e["Properties"]
        for e in endpoints.values()
        if e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"
    ]
    assert any("dynamodb" in json.dumps(e["ServiceName"]) for e in gateways)


def test_gateway_model_refuses_what_the_service_would() -> None:
    from jsonschema import Draft4Validator

    from local_platform.ehr import hook_request
    from local_platform.ehr_bundle import patient

    schema = cds_hook_request_schema()
    body = hook_request(
        [patient("p", "1950-01-01"), {"resourceType": "Encounter", "id": "e"}], "p", "e"
    )
    Draft4Validator(schema).validate(body)
    for broken in (
        {**body, "hook": "patient-view"},
        {k: v for k, v in body.items() if k != "context"},
    ):
        assert not Draft4Validator(schema).is_valid(broken)


def _context(**changes: Any) -> dict[str, Any]:
    context = copy.deepcopy(cdk_context())
    context["stages"]["dev"]["cds_hooks"].update(changes)
    return context


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issuers": []}, "issuers must be a non-empty list"),
        ({"issuers": [{"iss": "http://ehr", "jwks_url": "https://x/jwks"}]}, "iss"),
        ({"issuers": [{"iss": "https://ehr", "jwks_url": "ftp://x"}]}, "jwks_url"),
        ({"issuers": [{"iss": "https://a", "jwks_url": "https://x"}] * 2}, "twice"),
        ({"authorizer_cache_ttl_s": 3600}, "authorizer_cache_ttl_s"),
        ({"throttle_burst": 1}, "throttle_burst"),
    ],
)
def test_cds_config_errors_name_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_stage_config(_context(**changes), "dev")


def test_the_worklist_link_comes_from_the_worklist_section() -> None:
    context = _context()
    assert load_stage_config(context, "dev").cds_hooks.worklist_page_url is None
    context["stages"]["dev"]["worklist"]["page_url"] = "https://d1.cloudfront.net/worklist/"
    config = load_stage_config(context, "dev")
    assert config.cds_hooks.worklist_page_url == "https://d1.cloudfront.net/worklist/"


def test_the_worklist_link_defaults_to_the_pages_custom_domain() -> None:
    context = _context()
    context["stages"]["dev"]["worklist"]["domain_name"] = "worklist.hospital.example"
    context["stages"]["dev"]["worklist"]["certificate_arn"] = (
        "arn:aws:acm:us-east-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"
    )
    config = load_stage_config(context, "dev")
    assert config.cds_hooks.worklist_page_url == "https://worklist.hospital.example/"
