"""Names shared by the deployer and the stack that wires it (one definition, imported by both).

The deployer reconciles the endpoint with the registry whenever something may have changed: a
model package state change, an endpoint state change, or a periodic sweep. All three arrive on
one FIFO queue in one message group per model package group, so reconciliations of one endpoint
never overlap and run in arrival order.
"""

from __future__ import annotations

#: CloudWatch namespace of the deployer's own metrics.
METRIC_NAMESPACE = "ReadmissionPlatform/Deployments"

#: Published (value 1) while a version that is no longer approved is being rolled out. The
#: rejection alarm watches it and is part of every blue/green update's AutoRollbackConfiguration,
#: so SageMaker rolls the update back to the previous fleet.
REJECTED_ROLLOUT_METRIC = "RejectedVersionInFlight"
ENDPOINT_DIMENSION = "EndpointName"

#: EventBridge detail types the deployer acts on.
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
SCHEDULED_EVENT = "Scheduled Event"

#: Approval statuses (SageMaker's ModelApprovalStatus values).
APPROVED = "Approved"
REJECTED = "Rejected"
PENDING_MANUAL_APPROVAL = "PendingManualApproval"

#: How long a trigger waits before the next look at an endpoint that is still changing.
RETRY_SECONDS = 60

#: The endpoint's single production variant: the deployer creates it, the platform alarms and the
#: drift monitor read its metrics and capture, the local endpoint answers under its name.
VARIANT_NAME = "AllTraffic"

# -- Shadow stage (lambdas/deployer/shadow.py) ---------------------------------------------------
#: Variant name of a candidate running in shadow beside the production variant (VARIANT_NAME);
#: its answers are captured, never returned.
SHADOW_VARIANT_NAME = "Shadow"
#: Tag on a shadow endpoint config: the candidate's package ARN (TAG_MODEL_PACKAGE_ARN stays the
#: serving version's, so that everything reading "what serves" keeps reading the right one).
TAG_SHADOW_PACKAGE_ARN = "readmission:shadow-package-arn"
#: Tag on a shadow endpoint config: the candidate's own (single-variant) config it promotes to.
TAG_SHADOW_CANDIDATE_CONFIG = "readmission:shadow-candidate-config"
#: Published once per shadow decision: 1 held, 0 promoted (alarmed; on the dashboard).
SHADOW_HELD_METRIC = "ShadowCandidateHeld"
#: Comparison figures published with each decision (dimension ENDPOINT_DIMENSION).
SHADOW_COMPARISON_METRICS = {
    "pearson": "ShadowScorePearson",
    "spearman": "ShadowScoreSpearman",
    "band_agreement": "ShadowRiskBandAgreement",
    "alert_rate_difference": "ShadowAlertRateDifference",
    "candidate_error_rate": "ShadowCandidateErrorRate",
}

# -- Autoscaling (lambdas/deployer/autoscaling.py) -----------------------------------------------
#: 1 while the production variant runs at its configured maximum instance count (published on
#: every settled look; the sustained-max-capacity alarm watches it).
AT_MAX_CAPACITY_METRIC = "EndpointAtMaxCapacity"
VARIANT_DIMENSION = "VariantName"
#: The deployer's own name for the target tracking policy it puts on the variant.
SCALING_POLICY_NAME = "readmission-invocations-per-instance"
