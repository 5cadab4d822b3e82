"""The network: isolated subnets only, no NAT, the endpoints the workloads need, flow logs."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk.assertions import Match

from stacks.components.network import INTERFACE_ENDPOINTS
from tests.stacks.conftest import Synthesized, as_list, flatten, only

EXPECTED_INTERFACE_SERVICES = {
    "sagemaker.api",
    "sagemaker.runtime",
    "monitoring",
    "logs",
    "secretsmanager",
    "kms",
    "sns",
    "xray",
    "sts",
    "glue",
}


def _service(props: dict) -> str:
    """``com.amazonaws.<region>.sagemaker.api`` -> ``sagemaker.api``."""
    return flatten(props["ServiceName"]).removeprefix("com.amazonaws.<ref>.")


def test_two_isolated_subnets_and_no_route_to_the_internet(dev: Synthesized) -> None:
    network = dev["Network"]
    network.resource_count_is("AWS::EC2::Subnet", 2)
    for resource in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::EIP"):
        network.resource_count_is(resource, 0)
    for subnet in network.find_resources("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    network.resource_count_is("AWS::EC2::Route", 0)


def test_interface_endpoints_are_exactly_the_services_used(dev: Synthesized) -> None:
    endpoints = dev["Network"].find_resources("AWS::EC2::VPCEndpoint")
    interface = {
        _service(e["Properties"])
        for e in endpoints.values()
        if e["Properties"].get("VpcEndpointType") == "Interface"
    }
    assert interface == EXPECTED_INTERFACE_SERVICES
    assert len(INTERFACE_ENDPOINTS) == len(EXPECTED_INTERFACE_SERVICES)
    gateways = [
        e for e in endpoints.values() if e["Properties"].get("VpcEndpointType") == "Gateway"
    ]
    # S3 (the data lake) and DynamoDB (the worklist table): gateway endpoints, free.
    assert sorted(_service(g["Properties"]) for g in gateways) == ["dynamodb", "s3"]
    for endpoint in endpoints.values():
        if endpoint["Properties"].get("VpcEndpointType") == "Interface":
            assert endpoint["Properties"]["PrivateDnsEnabled"] is True


def test_endpoints_accept_https_from_the_vpc_only(dev: Synthesized) -> None:
    group = only(
        dev["Network"],
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": Match.string_like_regexp("Interface VPC endpoints")},
    )
    assert group["SecurityGroupIngress"] == [
        {
            "CidrIp": "10.40.0.0/16",
            "Description": "HTTPS from the VPC",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]


def test_flow_logs_capture_all_traffic_to_an_encrypted_log_group(dev: Synthesized) -> None:
    network = dev["Network"]
    flow_log = only(network, "AWS::EC2::FlowLog")
    assert flow_log["TrafficType"] == "ALL"
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    group = only(network, "AWS::Logs::LogGroup")
    assert "KmsKeyId" in group
    assert group["RetentionInDays"] == 90


def test_prod_keeps_flow_logs_for_its_retention(prod: Synthesized) -> None:
    assert only(prod["Network"], "AWS::Logs::LogGroup")["RetentionInDays"] == 365


def test_outputs_give_a_hand_launched_job_the_private_subnets_and_security_group(
    dev: Synthesized,
) -> None:
    network = dev["Network"]
    outputs = network.find_outputs("*")
    subnets = network.find_resources("AWS::EC2::Subnet")
    joined = outputs["PrivateSubnetIds"]["Value"]["Fn::Join"]
    assert joined[0] == ","
    assert sorted(ref["Ref"] for ref in joined[1]) == sorted(subnets)
    groups = network.find_resources("AWS::EC2::SecurityGroup")
    group_id = outputs["WorkloadSecurityGroupId"]["Value"]["Fn::GetAtt"]
    assert group_id[1] == "GroupId"
    assert group_id[0] in groups
    assert "workload" in group_id[0].lower()


#: The account the templates deploy to (``{"Ref": "AWS::AccountId"}`` in a policy) and another.
OWN_ACCOUNT = "111111111111"
OTHER_ACCOUNT = "999999999999"


def _value(node: Any) -> Any:
    """A policy value with ``AWS::AccountId`` resolved to :data:`OWN_ACCOUNT`."""
    if node == {"Ref": "AWS::AccountId"}:
        return OWN_ACCOUNT
    if isinstance(node, list):
        return [_value(item) for item in node]
    return node


def _matches(pattern: str, text: str) -> bool:
    """IAM's wildcard match (``*`` and ``?``; every other character literal)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, text) is not None


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        if operator != "StringEquals":  # the only operator these policies may use
            raise AssertionError(f"unexpected condition operator {operator}")
        for key, expected in keys.items():
            allowed = _value(expected)
            allowed = allowed if isinstance(allowed, list) else [allowed]
            if key not in context or context[key] not in allowed:
                return False
    return True


def endpoint_allows(
    document: dict[str, Any] | None,
    *,
    principal_account: str,
    resource_account: str,
    action: str,
    resource: str,
) -> bool:
    """Whether an endpoint policy lets this request through (no policy: AWS's full access).

    A small evaluator of what these policies contain: Allow and Deny statements, principal
    ``*``, wildcard actions and resources, ``StringEquals`` conditions.
    """
    if document is None:
        return True
    context = {"aws:PrincipalAccount": principal_account, "aws:ResourceAccount": resource_account}
    verdicts = []
    for statement in document["Statement"]:
        assert statement.get("Principal") in ("*", {"AWS": "*"}), statement
        applies = (
            any(_matches(a, action) for a in as_list(statement["Action"]))
            and any(_matches(r, resource) for r in as_list(statement["Resource"]))
            and _condition_holds(statement.get("Condition", {}), context)
        )
        if applies:
            verdicts.append(statement["Effect"])
    return "Allow" in verdicts and "Deny" not in verdicts


#: A request each endpoint carries: (action, resource ARN in the resource's account).
REQUESTS = {
    "s3": ("s3:GetObject", "arn:aws:s3:::{account}-curated/features/part-0.parquet"),
    "dynamodb": (
        "dynamodb:Query",
        "arn:aws:dynamodb:us-east-1:{account}:table/readmission-dev-worklist",
    ),
    "sagemaker.api": (
        "sagemaker:DescribeModelPackage",
        "arn:aws:sagemaker:us-east-1:{account}:model-package/readmission-dev-models/3",
    ),
    "sagemaker.runtime": (
        "sagemaker:InvokeEndpoint",
        "arn:aws:sagemaker:us-east-1:{account}:endpoint/readmission-dev-endpoint",
    ),
    "monitoring": ("cloudwatch:PutMetricData", "*"),
    "logs": ("logs:PutLogEvents", "arn:aws:logs:us-east-1:{account}:log-group:/x:*"),
    "secretsmanager": (
        "secretsmanager:GetSecretValue",
        "arn:aws:secretsmanager:us-east-1:{account}:secret:readmission-dev/key-AbCdEf",
    ),
    "kms": ("kms:Decrypt", "arn:aws:kms:us-east-1:{account}:key/0000"),
    "sns": ("sns:Publish", "arn:aws:sns:us-east-1:{account}:readmission-dev-alerts"),
    "xray": ("xray:PutTraceSegments", "*"),
    "sts": ("sts:AssumeRole", "arn:aws:iam::{account}:role/x"),
    "glue": ("glue:GetJobRun", "arn:aws:glue:us-east-1:{account}:job/readmission-dev-ehr-features"),
}


def test_every_endpoint_carries_only_this_accounts_principals_to_this_accounts_resources(
    dev: Synthesized, prod: Synthesized
) -> None:
    """A credential of another account cannot use the endpoints, and the workloads cannot
    reach another account's buckets, keys or topics through them (data exfiltration).

    AWS's data-perimeter endpoint policies, with ``aws:PrincipalAccount`` and
    ``aws:ResourceAccount`` (https://docs.aws.amazon.com/whitepapers/latest/
    building-a-data-perimeter-on-aws/perimeter-implementation.html); an endpoint without a
    policy allows full access (https://docs.aws.amazon.com/vpc/latest/privatelink/
    vpc-endpoints-access.html).
    """
    for synthesized in (dev, prod):
        endpoints = synthesized["Network"].find_resources("AWS::EC2::VPCEndpoint")
        assert {_service(e["Properties"]) for e in endpoints.values()} == set(REQUESTS)
        for endpoint in endpoints.values():
            name = _service(endpoint["Properties"])
            document = endpoint["Properties"].get("PolicyDocument")
            verdicts = {
                (principal, owner): _allows_request(document, name, principal, owner)
                for principal in (OWN_ACCOUNT, OTHER_ACCOUNT)
                for owner in (OWN_ACCOUNT, OTHER_ACCOUNT)
            }
            assert verdicts == {
                (OWN_ACCOUNT, OWN_ACCOUNT): True,
                (OWN_ACCOUNT, OTHER_ACCOUNT): False,
                (OTHER_ACCOUNT, OWN_ACCOUNT): False,
                (OTHER_ACCOUNT, OTHER_ACCOUNT): False,
            }, name


def _allows_request(document: Any, service: str, principal: str, owner: str) -> bool:
    """Whether the endpoint of ``service`` lets ``principal``'s account reach ``owner``'s."""
    action, resource = REQUESTS[service]
    return endpoint_allows(
        document,
        principal_account=principal,
        resource_account=owner,
        action=action,
        resource=resource.format(account=owner),
    )


def test_no_aws_owned_bucket_is_reachable_through_the_s3_endpoint(dev: Synthesized) -> None:
    """Nothing in the subnets pulls ECR image layers or installs OS packages: SageMaker pulls
    the images itself (``Platform`` repository access), so neither the ECR layer bucket nor
    the Amazon Linux repositories are excepted (https://docs.aws.amazon.com/sagemaker/latest/
    dg/train-vpc.html)."""
    (gateway,) = [
        e["Properties"]
        for e in dev["Network"].find_resources("AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType") == "Gateway" and _service(e["Properties"]) == "s3"
    ]
    for bucket in (
        "arn:aws:s3:::prod-us-east-1-starport-layer-bucket/sha256/abc",
        "arn:aws:s3:::amazonlinux-2-repos-us-east-1/2/core/latest/x86_64/mirror.list",
        "arn:aws:s3:::repo.us-east-1.amazonaws.com/2018.03/main/mirror.list",
    ):
        assert not endpoint_allows(
            gateway["PolicyDocument"],
            principal_account=OWN_ACCOUNT,
            resource_account="aws-owned",
            action="s3:GetObject",
            resource=bucket,
        ), bucket


def test_etl_security_group_admits_only_its_own_members_on_all_tcp(dev: Synthesized) -> None:
    """Glue requires a self-referencing inbound rule for all TCP ports on the connection's
    security group (https://docs.aws.amazon.com/glue/latest/dg/connection-JDBC-VPC.html)."""
    network = dev["Network"]
    groups = network.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("ETL Glue job")}},
    )
    assert len(groups) == 1
    (group_id, group) = next(iter(groups.items()))
    assert "SecurityGroupIngress" not in group["Properties"]  # no CIDR rule
    own = {"Fn::GetAtt": [group_id, "GroupId"]}
    rules = [
        rule["Properties"]
        for rule in network.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == own
    ]
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules] == [("tcp", 0, 65535)]
    assert rules[0]["SourceSecurityGroupId"] == own


def test_training_instances_reach_each_other_for_nccl_and_ipsec(dev: Synthesized) -> None:
    """Multi-instance jobs run torchrun/NCCL (dynamic TCP ports) and, with inter-container
    traffic encryption, IPsec between the instances: UDP 500 and ESP (IP protocol 50) in and
    out of the job's security group (https://docs.aws.amazon.com/sagemaker/latest/dg/
    train-encrypt.html). Network isolation keeps traffic between a job's own instances."""
    network = dev["Network"]
    groups = network.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("training jobs")}},
    )
    [(group_id, group)] = groups.items()
    own = {"Fn::GetAtt": [group_id, "GroupId"]}
    rules = [
        rule["Properties"]
        for rule in network.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == own
        and rule["Properties"]["SourceSecurityGroupId"] == own
    ]
    assert [r["IpProtocol"] for r in rules] == ["-1"]  # every protocol: TCP, UDP 500, ESP
    assert {"CidrIp": "0.0.0.0/0", "IpProtocol": "-1"}.items() <= group["Properties"][
        "SecurityGroupEgress"
    ][0].items()
