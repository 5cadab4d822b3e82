"""JSON Schemas (draft 2020-12) of CDS Hooks 2.0 messages, written from the specification.

No package ships them; each schema follows the section it cites, with the spec's REQUIRED
members required and its enumerations closed:

- Discovery response: https://cds-hooks.hl7.org/2.0/#discovery ("Response" and the CDS
  Service attributes table: hook, description, id REQUIRED; title, prefetch, usageRequirements
  OPTIONAL).
- HTTP request: https://cds-hooks.hl7.org/2.0/#http-request (hook, hookInstance, context
  REQUIRED; fhirServer, fhirAuthorization, prefetch OPTIONAL; fhirAuthorization's
  access_token, token_type "Bearer", expires_in, scope, subject REQUIRED).
- The encounter-discharge context: https://cds-hooks.hl7.org/hooks/encounter-discharge/
  (userId, patientId, encounterId REQUIRED).
- CDS Service response and Card attributes: https://cds-hooks.hl7.org/2.0/#cds-service-response
  and #card-attributes (summary REQUIRED, under 140 characters; indicator REQUIRED, one of
  info, warning, critical; source REQUIRED with label REQUIRED; detail Markdown; links with
  label, url, type "absolute" or "smart").
"""

from __future__ import annotations

from typing import Any

DISCOVERY_RESPONSE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["services"],
    "properties": {
        "services": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hook", "description", "id"],
                "properties": {
                    "hook": {"type": "string"},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "id": {"type": "string", "pattern": "^[^/]+$"},
                    "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                    "usageRequirements": {"type": "string"},
                },
            },
        }
    },
}

HOOK_REQUEST: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["hook", "hookInstance", "context"],
    "properties": {
        "hook": {"const": "encounter-discharge"},
        "hookInstance": {"type": "string", "minLength": 1},
        "fhirServer": {"type": "string", "format": "uri"},
        "fhirAuthorization": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
            "properties": {"token_type": {"const": "Bearer"}},
        },
        "context": {
            "type": "object",
            "required": ["userId", "patientId", "encounterId"],
            "properties": {
                "userId": {"type": "string"},
                "patientId": {"type": "string"},
                "encounterId": {"type": "string"},
            },
        },
        "prefetch": {"type": "object"},
    },
}

_LINK = {
    "type": "object",
    "required": ["label", "url", "type"],
    "properties": {
        "label": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "type": {"enum": ["absolute", "smart"]},
        "appContext": {"type": "string"},
    },
}

HOOK_RESPONSE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["cards"],
    "properties": {
        "cards": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["summary", "indicator", "source"],
                "properties": {
                    "uuid": {"type": "string", "format": "uuid"},
                    "summary": {"type": "string", "maxLength": 139},
                    "detail": {"type": "string"},
                    "indicator": {"enum": ["info", "warning", "critical"]},
                    "source": {
                        "type": "object",
                        "required": ["label"],
                        "properties": {
                            "label": {"type": "string"},
                            "url": {"type": "string", "format": "uri"},
                            "icon": {"type": "string", "format": "uri"},
                        },
                    },
                    "links": {"type": "array", "items": _LINK},
                    "suggestions": {"type": "array"},
                    "selectionBehavior": {"enum": ["at-most-one", "any"]},
                },
            },
        },
        "systemActions": {"type": "array"},
    },
}
