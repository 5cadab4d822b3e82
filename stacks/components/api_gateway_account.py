"""API Gateway's account-level CloudWatch Logs role: what a stage with logging needs first.

API Gateway writes a stage's access logs (and execution logs) with ONE role per account and
region, set in the account settings (``AWS::ApiGateway::Account``). A fresh account has none,
and creating a stage with access logging then fails. This construct creates that role and sets
it. Because the setting is a singleton, every REST API of the account and region logs through
this role afterwards, and a second ``AWS::ApiGateway::Account`` anywhere (another stage in the
same account and region, another team's stack) overwrites it: only one stack per account and
region should create it (``api.cloudwatch_role: "create"``), every other one says
``"existing"``. Both the role and the setting are retained when the stack is deleted, so that
the account's other APIs keep logging (deleting the setting would not clear it anyway: the
account would keep pointing at a deleted role).

https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-account.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.nag import acknowledge
from stacks.wildcards import acknowledge_wildcards

SERVICE_PRINCIPAL = "apigateway.amazonaws.com"
#: AWS's AmazonAPIGatewayPushToCloudWatchLogs managed policy grants these on "*" together with
#: logs:GetLogEvents and logs:FilterLogEvents. Writing logs needs no read of log events, so the
#: two reads are left out, and the resources are this account's and region's log groups only.
#: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonAPIGatewayPushToCloudWatchLogs.html
LOG_GROUP_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
)
LOG_EVENT_ACTIONS = ("logs:PutLogEvents",)

ACCOUNT_WIDE_REASON = (
    "API Gateway uses this one role for every REST API of the account and region (it is the "
    "account setting), writing access logs to each stage's own group and execution logs to "
    "API-Gateway-Execution-Logs_<api id>/<stage>: the groups cannot be named in advance, so "
    "the statements cover this account's and region's log groups only, and grant no reads."
)
INLINE_REASON = (
    "The permissions are inline in the role on purpose: the role is retained when the stack "
    "is deleted (the account setting keeps pointing at it), and a separate policy resource "
    "would be deleted with the stack and leave the account's APIs unable to log."
)


class ApiGatewayCloudWatchRole(Construct):
    """The account's API Gateway CloudWatch Logs role and the account setting naming it.

    Exposes ``role`` and ``account`` (the ``AWS::ApiGateway::Account``, which a stage with
    logging must depend on).
    """

    def __init__(self, scope: Construct, construct_id: str, *, description: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(SERVICE_PRINCIPAL),
            description=description,
            inline_policies={
                "WriteApiLogs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="LogGroupsAndStreams",
                            actions=list(LOG_GROUP_ACTIONS),
                            resources=[log_groups],
                        ),
                        iam.PolicyStatement(
                            sid="LogEvents",
                            actions=list(LOG_EVENT_ACTIONS),
                            resources=[f"{log_groups}:log-stream:*"],
                        ),
                    ]
                )
            },
        )
        self.role.apply_removal_policy(RemovalPolicy.RETAIN)
        self.account = apigateway.CfnAccount(
            self, "Account", cloud_watch_role_arn=self.role.role_arn
        )
        self.account.apply_removal_policy(RemovalPolicy.RETAIN)
        acknowledge_wildcards(self.role, ACCOUNT_WIDE_REASON, "Resource::*:logs:*:log-group:*")
        acknowledge(self.role, INLINE_REASON, "HIPAA.Security-IAMNoInlinePolicy")

    def precede_stage_of(self, api: apigateway.RestApi) -> None:
        """Order the deployment: the REST API, then this setting, then the API's stage.

        A stage with access logging fails to create while the account has no role; the
        setting itself comes after the API, as aws-cdk-lib's own ``RestApi(cloud_watch_role=
        True)`` orders it.
        """
        self.account.node.add_dependency(api.node.default_child)
        api.deployment_stage.node.add_dependency(self.account)
