"""The derived images: repositories, the build project and its role, tags, the build script."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks import packaging
from stacks.components.container_images import TAG_HASH_CHARS, image_tag
from tests.stacks.conftest import Synthesized, as_list, flatten, only, statements

REPOSITORIES = ("readmission-{stage}-training", "readmission-{stage}-serving")
DLC = "763104351884"


def _repositories(synthesized: Synthesized, stage: str) -> dict[str, Any]:
    found = synthesized["TrainingPipeline"].find_resources("AWS::ECR::Repository")
    by_name = {r["Properties"]["RepositoryName"]: r for r in found.values()}
    assert sorted(by_name) == sorted(name.format(stage=stage) for name in REPOSITORIES)
    return by_name


def _pipeline_key(synthesized: Synthesized) -> dict[str, Any]:
    keys = synthesized["TrainingPipeline"].find_resources("AWS::KMS::Key")
    assert len(keys) == 1
    return {"Fn::GetAtt": [next(iter(keys)), "Arn"]}


@pytest.mark.parametrize(("stage", "keep"), [("dev", 5), ("prod", 20)])
def test_repositories_are_kms_encrypted_scanned_immutable_and_pruned(
    stage: str, keep: int, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(stage)
    for repository in _repositories(synthesized, stage).values():
        props = repository["Properties"]
        assert props["EncryptionConfiguration"] == {
            "EncryptionType": "KMS",
            "KmsKey": _pipeline_key(synthesized),
        }
        assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
        assert props["ImageTagMutability"] == "IMMUTABLE"
        lifecycle = props["LifecyclePolicy"]["LifecyclePolicyText"]
        assert f'"countType":"imageCountMoreThan","countNumber":{keep}' in lifecycle
        assert '"action":{"type":"expire"}' in lifecycle


def test_dev_repositories_go_with_the_stack_prod_ones_stay(
    dev: Synthesized, prod: Synthesized
) -> None:
    for repository in _repositories(dev, "dev").values():
        assert repository["DeletionPolicy"] == "Delete"
        assert repository["Properties"]["EmptyOnDelete"] is True
    for repository in _repositories(prod, "prod").values():
        assert repository["DeletionPolicy"] == "Retain"
        assert (
            "EmptyOnDelete" not in repository["Properties"]
            or not (repository["Properties"]["EmptyOnDelete"])
        )


def test_build_project_is_privileged_encrypted_logged_and_reads_the_s3_context(
    dev: Synthesized,
) -> None:
    project = only(dev["TrainingPipeline"], "AWS::CodeBuild::Project")
    assert project["Name"] == "readmission-dev-image-build"
    assert project["Environment"]["PrivilegedMode"] is True
    assert project["Environment"]["Image"] == "aws/codebuild/standard:7.0"
    assert project["EncryptionKey"] == _pipeline_key(dev)
    assert project["TimeoutInMinutes"] == 90
    assert project["LogsConfig"]["CloudWatchLogs"]["Status"] == "ENABLED"
    group = only(
        dev["TrainingPipeline"], "AWS::Logs::LogGroup", {"LogGroupName": "/aws/codebuild/"
        "readmission-dev-image-build"}
    )  # fmt: skip
    assert group["KmsKeyId"] == _pipeline_key(dev)
    source = project["Source"]
    assert source["Type"] == "S3"
    assert flatten(source["Location"]).endswith(".zip")
    assert "bash build.sh" in source["BuildSpec"]


def _by_type(resources: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == resource_type}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_build_runs_in_its_own_network_with_https_egress_only(
    stage: str, request: pytest.FixtureRequest
) -> None:
    """The build reaches the DLC registry, PyPI, S3 and Logs: over TCP 443 from a private
    subnet behind a NAT gateway, nothing inbound, every flow logged; never the platform VPC."""
    synthesized: Synthesized = request.getfixturevalue(stage)
    resources = synthesized["TrainingPipeline"].to_json()["Resources"]
    project = only(synthesized["TrainingPipeline"], "AWS::CodeBuild::Project")
    (vpc_id,) = _by_type(resources, "AWS::EC2::VPC")
    assert project["VpcConfig"]["VpcId"] == {"Ref": vpc_id}
    assert not synthesized["Network"].find_resources("AWS::EC2::NatGateway")
    # The build's subnets: private ones whose default route is the NAT gateway.
    routes = _by_type(resources, "AWS::EC2::Route")
    nat_routed = {
        r["Properties"]["RouteTableId"]["Ref"]
        for r in routes.values()
        if "NatGatewayId" in r["Properties"]
    }
    associations = _by_type(resources, "AWS::EC2::SubnetRouteTableAssociation").values()
    for subnet in project["VpcConfig"]["Subnets"]:
        (table,) = [
            a["Properties"]["RouteTableId"]["Ref"]
            for a in associations
            if a["Properties"]["SubnetId"] == subnet
        ]
        assert table in nat_routed
    for subnet in _by_type(resources, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    # One security group: no ingress, TCP 443 out only.
    ((group_id, _),) = [g["Fn::GetAtt"] for g in project["VpcConfig"]["SecurityGroupIds"]]
    group = resources[group_id]["Properties"]
    assert "SecurityGroupIngress" not in group
    assert not _by_type(resources, "AWS::EC2::SecurityGroupIngress")
    assert group["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to registries, PyPI and AWS",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    (flow_log,) = _by_type(resources, "AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["ResourceId"] == {"Ref": vpc_id}
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    (endpoint,) = _by_type(resources, "AWS::EC2::VPCEndpoint").values()
    assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"
    assert flatten(endpoint["Properties"]["ServiceName"]).endswith(".s3")


def test_build_variables_name_both_images_and_their_base_images(dev: Synthesized) -> None:
    project = only(dev["TrainingPipeline"], "AWS::CodeBuild::Project")
    values = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
    assert flatten(values["TRAINING_BASE_IMAGE"]).endswith("/pytorch-training:2.6.0-gpu-py312")
    assert flatten(values["SERVING_BASE_IMAGE"]).endswith("/pytorch-inference:2.6.0-cpu-py312")
    assert flatten(values["TRAINING_BASE_IMAGE"]).startswith(f"{DLC}.dkr.ecr.")
    context = packaging.stage_container_context()
    assert values["TRAINING_IMAGE_TAG"] == image_tag(
        "training", packaging.content_digest(context / "training"), "ml.p3.8xlarge"
    )
    assert values["SERVING_IMAGE_TAG"] == image_tag(
        "serving", packaging.content_digest(context / "serving"), "ml.m5.large"
    )
    assert flatten(values["TRAINING_REPOSITORY_URI"]).endswith("/<ref>")


def test_build_role_pulls_only_the_dlc_bases_and_pushes_only_its_repositories(
    dev: Synthesized,
) -> None:
    found = statements(dev["TrainingPipeline"], "ImagesBuildRole")
    by_sid = {s.get("Sid"): s for s in found}
    pulls = by_sid["PullBaseImages"]
    assert sorted(flatten(r) for r in pulls["Resource"]) == [
        f"arn:<ref>:ecr:<ref>:{DLC}:repository/pytorch-inference",
        f"arn:<ref>:ecr:<ref>:{DLC}:repository/pytorch-training",
    ]
    assert sorted(as_list(pulls["Action"])) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    repositories = dev["TrainingPipeline"].find_resources("AWS::ECR::Repository")
    pushes = by_sid["PushDerivedImages"]
    assert sorted(str(r) for r in pushes["Resource"]) == sorted(
        str({"Fn::GetAtt": [logical_id, "Arn"]}) for logical_id in repositories
    )
    assert "ecr:PutImage" in pushes["Action"]
    # Every ECR permission is one of these three statements: nothing else reaches a registry.
    ecr = [s for s in found if any(a.startswith("ecr:") for a in as_list(s["Action"]))]
    assert sorted(s["Sid"] for s in ecr) == ["EcrToken", "PullBaseImages", "PushDerivedImages"]
    assert by_sid["EcrToken"]["Action"] == "ecr:GetAuthorizationToken"
    reads = by_sid["ReadBuildContext"]
    assert reads["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert flatten(reads["Resource"]).endswith(".zip")
    s3_actions = {a for s in found for a in as_list(s["Action"]) if a.startswith("s3:")}
    assert s3_actions == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetBucketAcl",
        "s3:GetBucketLocation",
    }


def test_privileged_mode_is_acknowledged_for_docker_only(dev: Synthesized) -> None:
    from tests.stacks.test_compliance import _acknowledgements

    found = _acknowledgements(dev.app)
    privileged = {k: v for k, v in found.items() if "AwsSolutions-CB3" in k}
    assert list(privileged) == [
        "Readmission-dev-TrainingPipeline/Images/Build AwsSolutions::AwsSolutions-CB3"
    ]
    assert "docker" in next(iter(privileged.values()))


def _context(tmp_path: Path, name: str) -> Path:
    return packaging.stage_container_context(build_root=tmp_path / name)


def test_tags_are_deterministic_and_follow_the_requirements(tmp_path: Path) -> None:
    first = _context(tmp_path, "a")
    second = _context(tmp_path, "b")
    os.utime(second / "training" / "Dockerfile", (0, 0))
    for image in ("training", "serving"):
        assert packaging.content_digest(first / image) == packaging.content_digest(second / image)
    before = packaging.content_digest(first / "training")
    requirements = first / "training" / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("0.23.3", "0.23.4"))
    after = packaging.content_digest(first / "training")
    assert after != before
    assert packaging.content_digest(first / "serving") == packaging.content_digest(
        second / "serving"
    )
    tag = image_tag("training", after, "ml.p3.8xlarge")
    assert tag == f"2.6.0-gpu-py312-{after[:TAG_HASH_CHARS]}"
    assert image_tag("serving", after, "ml.m5.large").startswith("2.6.0-cpu-py312-")


def test_staged_requirements_are_the_project_files(tmp_path: Path) -> None:
    from training import artifact

    context = _context(tmp_path, "context")
    root = packaging.REPO_ROOT
    assert (context / "training" / "requirements.txt").read_bytes() == (
        root / "training" / "requirements.txt"
    ).read_bytes()
    # The serving image holds exactly what every model archive asks the toolkit to install.
    model_dir = tmp_path / "model"
    artifact.copy_code(model_dir)
    assert (context / "serving" / "requirements.txt").read_bytes() == (
        model_dir / "code" / "requirements.txt"
    ).read_bytes()
    for image in ("training", "serving"):
        dockerfile = (context / image / "Dockerfile").read_text()
        assert "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}" in dockerfile
        # Hash-checked installs from the lock (tests/inference/test_serving_image.py).
        assert "--require-hashes" in dockerfile
        assert (context / image / "requirements.hashed.txt").is_file()


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "$CALLS"\n{body}\n')
    path.chmod(0o755)


def test_build_script_builds_and_pushes_only_missing_images(tmp_path: Path) -> None:
    context = _context(tmp_path, "context")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    calls = tmp_path / "calls.txt"
    # ECR holds the training tag already; the serving tag is missing.
    _stub(
        stubs,
        "aws",
        'case "$*" in *"describe-images"*"imageTag=t-1"*) exit 0;; '
        '*"describe-images"*) exit 254;; *) echo token;; esac',
    )
    _stub(stubs, "docker", "cat > /dev/null || true")
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    env = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "AWS_REGION": "eu-west-1",
        "TRAINING_REPOSITORY_URI": f"{registry}/readmission-dev-training",
        "TRAINING_IMAGE_TAG": "t-1",
        "TRAINING_BASE_IMAGE": f"{DLC}.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:x",
        "SERVING_REPOSITORY_URI": f"{registry}/readmission-dev-serving",
        "SERVING_IMAGE_TAG": "s-1",
        "SERVING_BASE_IMAGE": f"{DLC}.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:y",
    }
    bash = shutil.which("bash")
    assert bash is not None
    subprocess.run([bash, "build.sh"], cwd=context, env=env, check=True, timeout=30)
    docker = [c for c in calls.read_text().splitlines() if c.startswith("docker ")]
    assert docker == [
        f"docker login --username AWS --password-stdin {DLC}.dkr.ecr.eu-west-1.amazonaws.com",
        f"docker login --username AWS --password-stdin {registry}",
        f"docker build --pull --build-arg BASE_IMAGE={DLC}.dkr.ecr.eu-west-1.amazonaws.com/"
        f"pytorch-inference:y --tag {registry}/readmission-dev-serving:s-1 serving",
        f"docker push {registry}/readmission-dev-serving:s-1",
    ]


@pytest.mark.parametrize("image", ["training", "serving"])
def test_start_up_install_is_a_no_op_where_the_pins_are_installed(image: str) -> None:
    """What the serving toolkit does at endpoint start (``pip install -r
    code/requirements.txt``) needs no network once an environment holds the pins, as the
    derived images do: here the index is unreachable and pip still succeeds."""
    import sys

    requirements = packaging.REPO_ROOT / packaging.CONTAINER_REQUIREMENTS[image]
    env = {
        **os.environ,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-r", str(requirements)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Requirement already satisfied: transformers==5.23.0" in result.stdout
