"""The EHR calls the CDS service through the local API Gateway: the real authorizer (JWKS over
HTTP), its cache, the predict function and a fake endpoint, over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from lambdas.cds_authorizer import app as authorizer
from lambdas.cds_hooks.service import SERVICE_PATH, SERVICES_PATH
from local_platform import ehr
from local_platform.gateway import LocalApiGateway, Route
from tests.lambdas import test_cds_hooks as data
from tests.lambdas.predict_fixtures import predict_api

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class CountingAuthorizer:
    """The real authorizer, counting its invocations (to see API Gateway's cache at work)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls += 1
        return authorizer.lambda_handler(event, context)


@pytest.fixture(scope="module")
def platform() -> Iterator[tuple[str, ehr.EhrIdentity, CountingAuthorizer, Any]]:
    identity = ehr.EhrIdentity.generate()
    counting = CountingAuthorizer()
    with predict_api() as api, ehr.jwks_server(identity.jwks()) as jwks_url:
        routes = [
            Route(
                r.method,
                r.path,
                r.handler,
                r.function_name,
                authorizer=counting,
                authorizer_ttl_s=r.authorizer_ttl_s,
            )
            for r in ehr.cds_routes("predict")
        ]
        with LocalApiGateway(routes) as gateway:
            env = {
                authorizer.ISSUERS_ENV: json.dumps({identity.issuer: jwks_url}),
                authorizer.AUDIENCE_BASE_URL_ENV: gateway.url,
            }
            with mock.patch.dict("os.environ", env):
                yield gateway.url, identity, counting, api


def test_the_ehr_gets_a_card_and_a_replayed_token_is_refused_behind_the_cache(
    platform: tuple[str, ehr.EhrIdentity, CountingAuthorizer, Any],
) -> None:
    url, identity, counting, api = platform
    discovery_url = f"{url}{SERVICES_PATH}"
    discovery = ehr.call(discovery_url, identity.token(discovery_url))
    assert discovery.status == 200
    assert discovery.body["services"][0]["id"] == "readmission-risk"
    service_url = f"{url}{SERVICE_PATH}"
    token = identity.token(service_url)
    before = counting.calls
    reply = ehr.call(service_url, token, data.hook_body())
    assert reply.status == 200, reply.body
    card = reply.body["cards"][0]
    assert card["indicator"] in ("info", "warning", "critical")
    assert ehr.card_lines(card)[0].startswith(f"[{card['indicator'].upper()}]")
    replayed = ehr.call(service_url, token, data.hook_body())
    assert replayed.status == 401
    assert counting.calls == before + 1  # the replay was answered from the authorizer's cache
    assert api.fake.invocations == 1


def test_a_token_for_another_route_is_refused_even_from_the_cache(
    platform: tuple[str, ehr.EhrIdentity, CountingAuthorizer, Any],
) -> None:
    url, identity, _, _ = platform
    discovery_token = identity.token(f"{url}{SERVICES_PATH}")
    assert ehr.call(f"{url}{SERVICES_PATH}", discovery_token).status == 200
    # Same token on the hook: its cached Allow names the discovery method only -> 403.
    assert ehr.call(f"{url}{SERVICE_PATH}", discovery_token, data.hook_body()).status == 403


def test_strangers_forgers_and_late_callers_are_401(
    platform: tuple[str, ehr.EhrIdentity, CountingAuthorizer, Any],
) -> None:
    url, identity, _, _ = platform
    service_url = f"{url}{SERVICE_PATH}"
    stranger = ehr.EhrIdentity.generate()  # same issuer name and kid, another key
    assert ehr.call(service_url, stranger.token(service_url), data.hook_body()).status == 401
    late = identity.token(service_url, now=time.time() - 600)
    assert ehr.call(service_url, late, data.hook_body()).status == 401
    reply = ehr.call(service_url, "", data.hook_body())
    assert reply.status == 401
