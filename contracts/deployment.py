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
