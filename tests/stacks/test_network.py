"""The network: isolated subnets only, no NAT, the endpoints the workloads need, flow logs."""

from __future__ import annotations

from aws_cdk.assertions import Match

from stacks.components.network import INTERFACE_ENDPOINTS
from tests.stacks.conftest import Synthesized, flatten, only

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
    assert len(gateways) == 1
    assert _service(gateways[0]["Properties"]) == "s3"
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
