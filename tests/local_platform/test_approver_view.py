"""The demo's approver view: the card's metric groups as the terminal shows them."""

from __future__ import annotations

from local_platform import approver_view


def test_each_metric_group_shows_its_first_metrics_with_intervals() -> None:
    card = {
        "evaluation_details": [
            {
                "metric_groups": [
                    {
                        "name": "overall (test split)",
                        "metric_data": [
                            {"name": "AUROC", "type": "number", "value": 0.7123,
                             "notes": "95% CI 0.690 to 0.735, percentile bootstrap"},
                            {"name": "Brier score", "type": "number", "value": 0.1,
                             "notes": "not an interval"},
                            {"name": "X", "type": "string", "value": "not reported"},
                            {"name": "a", "type": "number", "value": 1.0},
                            {"name": "b", "type": "number", "value": 2.0},
                        ],
                    }
                ]
            }
        ]
    }  # fmt: skip
    [(name, shown)] = approver_view.metric_group_lines(card)
    assert name == "overall (test split)"
    assert shown == (
        "AUROC 0.712 (95% CI 0.690 to 0.735, percentile bootstrap); Brier score 0.100; "
        "X: not reported; a 1.000 (+1 more)"
    )


def test_the_lineage_points_at_the_curated_manifest() -> None:
    environment = approver_view.lineage_environment("readmission-dev-curated")
    assert environment["MANIFEST_S3_URI"] == "s3://readmission-dev-curated/manifest.json"
    assert environment["TRAINING_IMAGE_TAG"] == "local-torchrun"
