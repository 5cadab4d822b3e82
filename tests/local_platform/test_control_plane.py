"""The moto control plane serves real boto3 clients over loopback."""

from __future__ import annotations

import os

import boto3

from local_platform.control_plane import ControlPlane, patched_environment


def test_boto3_clients_reach_the_local_control_plane() -> None:
    with ControlPlane() as plane, patched_environment(plane.environment("http://127.0.0.1:9")):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="raw")
        s3.put_object(Bucket="raw", Key="k", Body=b"v")
        assert s3.get_object(Bucket="raw", Key="k")["Body"].read() == b"v"
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName="g")
        groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
        assert [g["ModelPackageGroupName"] for g in groups] == ["g"]
        runtime = boto3.client("sagemaker-runtime")
        assert runtime.meta.endpoint_url == "http://127.0.0.1:9"


def test_patched_environment_restores_what_was_there() -> None:
    os.environ["READMISSION_TEST_VAR"] = "before"
    with patched_environment({"READMISSION_TEST_VAR": "during", "READMISSION_NEW_VAR": "x"}):
        assert os.environ["READMISSION_TEST_VAR"] == "during"
    assert os.environ["READMISSION_TEST_VAR"] == "before"
    assert "READMISSION_NEW_VAR" not in os.environ
    del os.environ["READMISSION_TEST_VAR"]
