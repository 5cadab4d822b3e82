"""cdk-nag wiring: the rule packs every stage is checked against at synthesis."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks
from constructs import IConstruct

#: The packs every stack is checked against (the prefixes of their rule ids).
NAG_PACKS = ("AwsSolutions", "HIPAA.Security")


def apply_compliance_checks(app: App) -> None:
    """Run AwsSolutions and HIPAA.Security on every stack of ``app`` at synthesis.

    cdk-nag 3 reports through CDK's Validations: any finding that is not acknowledged with a
    reason fails ``app.synth()``.
    """
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True),
        HIPAASecurityChecks(app, verbose=True),
    )


def acknowledge(scope: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge cdk-nag findings on ``scope`` (and below) with one written reason.

    Rule ids are written as cdk-nag prints them (``AwsSolutions-IAM5[Resource::*]``); the
    pack prefix that CDK's Validations expects (``AwsSolutions::``) is added here.
    """
    acknowledgments = [Acknowledgment(id=_qualified(rule), reason=reason) for rule in rule_ids]
    Validations.of(scope).acknowledge(*acknowledgments)


def _qualified(rule_id: str) -> str:
    pack = rule_id.split("-", 1)[0]
    if pack not in NAG_PACKS:
        raise ValueError(f"{rule_id!r} is not a rule of {NAG_PACKS}")
    return f"{pack}::{rule_id}"
