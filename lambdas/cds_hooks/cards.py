"""The card a discharge hook answers with (CDS Hooks 2.0, "CDS Service Response" and "Card
Attributes", https://cds-hooks.hl7.org/2.0/#cds-service-response).

``summary`` (under 140 characters, as the spec requires) gives the band and the probability;
``indicator`` is ``info`` for a low band, ``warning`` for moderate, ``critical`` for high;
``detail`` is Markdown with the top factors in plain words and the model version; ``source``
names the platform; a link to the care team's worklist page is added when the stage config
gives its URL (``worklist.page_url``).
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts.encounter import READMISSION_WINDOW_DAYS
from lambdas.predict.fhir_output import factor_phrase
from lambdas.predict.schema import Prediction

SUMMARY_MAX_CHARS = 140
SOURCE_LABEL = "Readmission risk platform"
WORKLIST_LINK_LABEL = "Open the care-team worklist"
INDICATORS = {"low": "info", "moderate": "warning", "high": "critical"}


def summary(prediction: Prediction) -> str:
    """E.g. ``30-day readmission risk: HIGH (41%)``."""
    text = (
        f"{READMISSION_WINDOW_DAYS}-day readmission risk: {prediction.risk_band.upper()} "
        f"({prediction.probability:.0%})"
    )
    return text[: SUMMARY_MAX_CHARS - 1]


def detail(prediction: Prediction) -> str:
    """Markdown: the probability, the top factors in plain words, the model version."""
    lines = [
        f"**Probability of an unplanned readmission within {READMISSION_WINDOW_DAYS} days:** "
        f"{prediction.probability:.0%} ({prediction.risk_band} risk).",
        "",
    ]
    if prediction.top_factors:
        lines.append("**What weighs most:**")
        lines += [f"- {factor_phrase(factor)}" for factor in prediction.top_factors]
    else:
        lines.append("No single factor stands out.")
    lines += ["", f"_Model version {prediction.model_version}._"]
    return "\n".join(lines)


def card(prediction: Prediction, worklist_url: str | None) -> dict[str, Any]:
    """The one card of a hook response."""
    body: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": summary(prediction),
        "indicator": INDICATORS[prediction.risk_band],
        "detail": detail(prediction),
        "source": {"label": SOURCE_LABEL},
    }
    if worklist_url:
        body["links"] = [{"label": WORKLIST_LINK_LABEL, "url": worklist_url, "type": "absolute"}]
    return body
