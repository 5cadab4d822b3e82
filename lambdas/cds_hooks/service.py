"""The service as discovery describes it (CDS Hooks 2.0, "Discovery",
https://cds-hooks.hl7.org/2.0/#discovery), and the prefetch it asks for.

Prefetch templates (https://cds-hooks.hl7.org/2.0/#prefetch-template) use the
``encounter-discharge`` hook's context, ``patientId`` and ``encounterId``
(https://cds-hooks.hl7.org/hooks/encounter-discharge/): the Patient, the Encounter, the
patient's Encounters (prior utilisation), and the stay's Conditions, Procedures,
MedicationRequests, laboratory Observations and DocumentReferences (the discharge summary).
"""

from __future__ import annotations

from typing import Any

#: The function's settings of the service (set by stacks/components/prediction_api.py).
WORKLIST_PAGE_URL_ENV = "WORKLIST_PAGE_URL"
REPLAY_TABLE_ENV = "CDS_REPLAY_TABLE"
#: The replay table's key and TTL attribute (``lambdas.cds_hooks.replay`` writes them).
JTI_ATTRIBUTE = "jti"
EXPIRES_ATTRIBUTE = "expires_at"

SERVICES_PATH = "/cds-services"
SERVICE_ID = "readmission-risk"
SERVICE_PATH = f"{SERVICES_PATH}/{SERVICE_ID}"
HOOK = "encounter-discharge"
TITLE = "30-day readmission risk"
DESCRIPTION = (
    "Scores the patient being discharged for unplanned readmission within 30 days, with the "
    "factors that weigh most, so the care team can plan follow-up before the patient leaves."
)

_STAY = "patient={{context.patientId}}&encounter={{context.encounterId}}"
#: Prefetch key -> template. ``patient`` and ``encounter`` must be satisfied; every other key
#: must be sent (null when the EHR has no data for it), or the service answers 412.
PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "encounter": "Encounter/{{context.encounterId}}",
    "encounters": "Encounter?patient={{context.patientId}}",
    "conditions": f"Condition?{_STAY}",
    "procedures": f"Procedure?{_STAY}",
    "medications": f"MedicationRequest?{_STAY}",
    "observations": f"Observation?{_STAY}&category=laboratory",
    "documents": f"DocumentReference?{_STAY}",
}
REQUIRED_PREFETCH = ("patient", "encounter")


def discovery() -> dict[str, Any]:
    """The discovery response: one service on the ``encounter-discharge`` hook."""
    return {
        "services": [
            {
                "hook": HOOK,
                "id": SERVICE_ID,
                "title": TITLE,
                "description": DESCRIPTION,
                "prefetch": dict(PREFETCH),
            }
        ]
    }
