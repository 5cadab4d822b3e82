"""The deployer reads a version's decision threshold through the model-directory contract."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from contracts.model_artifact import CALIBRATION_FILE, Calibration
from lambdas.deployer.shadow import ShadowArtifactError, decision_threshold
from tests.lambdas.registrar_fixtures import archive

URL = "s3://artifacts/training/job/output/model.tar.gz"


class _S3:
    """Just GetObject, over one archive."""

    def __init__(self, archive: bytes) -> None:
        self.archive = archive

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        assert (Bucket, Key) == ("artifacts", "training/job/output/model.tar.gz")
        return {"Body": io.BytesIO(self.archive)}


def test_the_threshold_training_wrote_is_the_one_the_deployer_reads() -> None:
    written = Calibration(temperature=1.2, threshold=0.37, logit_offset=-0.5)
    s3 = _S3(archive({f"./{CALIBRATION_FILE}": json.dumps(written.to_dict()).encode()}))
    assert decision_threshold(s3, URL) == 0.37


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{not json", "calibration.json is malformed"),
        (b"[0.3]", "not a JSON object"),
        (json.dumps({"temperature": 1.0}).encode(), "'threshold' is missing"),
        (json.dumps({"temperature": 1.0, "threshold": 1.0}).encode(), "'threshold'"),
        (json.dumps({"temperature": 1.0, "threshold": True}).encode(), "'threshold'"),
        (json.dumps({"temperature": -1.0, "threshold": 0.3}).encode(), "'temperature'"),
    ],
)
def test_an_unusable_calibration_is_refused_naming_the_field(document: bytes, message: str) -> None:
    s3 = _S3(archive({f"./{CALIBRATION_FILE}": document}))
    with pytest.raises(ShadowArtifactError, match=message):
        decision_threshold(s3, URL)


def test_an_artifact_without_calibration_is_refused() -> None:
    with pytest.raises(ShadowArtifactError, match=r"holds no usable calibration\.json"):
        decision_threshold(_S3(archive({"./model.safetensors": b"\0"})), URL)
