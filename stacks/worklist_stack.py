"""The worklist stack: the care team's page (CloudFront + S3), its sign-in (Cognito) and its
read-only data API (API Gateway + Lambda) over the worklist table batch scoring fills."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.components.network import PrivateNetwork
from stacks.components.worklist_api import WorklistApi
from stacks.components.worklist_sign_in import WorklistSignIn
from stacks.components.worklist_site import WorklistSite
from stacks.config import StageConfig
from stacks.platform_stack import PlatformStack

#: The page's ``config.json`` keys (web/worklist/app.js and auth.js read them).
PAGE_SCOPES = "openid email"


class WorklistStack(PlatformStack):
    """Composes sign-in, data API and site; exposes ``sign_in``, ``api`` and ``site``.

    ``table`` is the worklist table batch scoring provisions; this stack only reads it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        network: PrivateNetwork,
        table: dynamodb.ITable,
        access_log_bucket: s3.IBucket,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        retain = self.retain
        key = self.service_key(
            "worklist-api",
            "encrypts the worklist API's logs and Lambda settings",
        )
        self.sign_in = WorklistSignIn(
            self,
            "SignIn",
            pool_name=f"{config.prefix}-worklist-users",
            config=config.worklist,
            retain=retain,
        )
        self.api = WorklistApi(
            self,
            "DataApi",
            api_name=f"{config.prefix}-worklist-api",
            function_name=f"{config.prefix}-worklist-api",
            config=config.worklist,
            table=table,
            user_pool=self.sign_in.user_pool,
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.workload_security_group,
            key=key,
            log_retention_days=config.retention.log_group_days,
            retain_logs=retain,
        )
        self.site = WorklistSite(
            self,
            "Site",
            config=config.worklist,
            api_origin=self.api.origin,
            auth_origin=self.sign_in.origin,
            access_log_bucket=access_log_bucket,
            noncurrent_version_days=config.retention.noncurrent_version_days,
            retain=retain,
        )
        self.api.allow_origin(self.site.origin)
        client = self.sign_in.add_page_client(self.site.url)
        self.site.deploy_page(
            {
                "apiUrl": self.api.api.url,
                "authorizeUrl": f"{self.sign_in.origin}/oauth2/authorize",
                "tokenUrl": f"{self.sign_in.origin}/oauth2/token",
                "logoutUrl": f"{self.sign_in.origin}/logout",
                "clientId": client.user_pool_client_id,
                "redirectUri": self.site.url,
                "scopes": PAGE_SCOPES,
            }
        )
        CfnOutput(self, "PageUrl", value=self.site.url)
        CfnOutput(self, "ApiUrl", value=self.api.api.url)
        CfnOutput(self, "UserPoolId", value=self.sign_in.user_pool.user_pool_id)
