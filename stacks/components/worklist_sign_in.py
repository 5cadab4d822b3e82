"""Sign-in for the care team's worklist page: a Cognito user pool, its managed login domain,
the care-team group, the page's app client and, by configuration, the hospital's IdP.

- No self sign-up: an administrator creates users (or they arrive through federation) and adds
  them to the care-team group; the data API refuses a signed-in user outside it (403).
- MFA required or optional by stage (TOTP only: no SMS, no phone numbers in the pool).
- Threat protection (Cognito's advanced security) off, audit or enforced by stage; any mode but
  off needs the Plus feature plan.
- The page's client is public (no secret: it runs in a browser) and may only use the
  authorization code grant, which Cognito's managed login completes with PKCE when the client
  sends a ``code_challenge``:
  https://docs.aws.amazon.com/cognito/latest/developerguide/using-pkce-in-authorization-code.html
- Federation: a SAML IdP (metadata URL) or an OIDC IdP (client secret read from Secrets Manager
  by a dynamic reference at deploy time, never in the template).

Exposes ``user_pool``, ``domain``, ``group`` and, after :meth:`add_page_client`, ``client``.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from stacks.config import FederationConfig, WorklistConfig
from stacks.nag import acknowledge

#: https://docs.aws.amazon.com/cognito/latest/developerguide/cognito-user-pools-assign-domain-prefix.html
COGNITO_DOMAIN_TEMPLATE = "https://{prefix}.auth.{region}.amazoncognito.com"
_THREAT_MODES = {
    "audit": cognito.StandardThreatProtectionMode.AUDIT_ONLY,
    "enforced": cognito.StandardThreatProtectionMode.FULL_FUNCTION,
}


def sign_in_origin(domain_prefix: str, region: str = Aws.REGION) -> str:
    """The origin of the user pool's managed login (the page's CSP needs it before the pool)."""
    return COGNITO_DOMAIN_TEMPLATE.format(prefix=domain_prefix, region=region)


class WorklistSignIn(Construct):
    """The worklist's user pool and everything that signs a care manager in."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pool_name: str,
        config: WorklistConfig,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        threat = _THREAT_MODES.get(config.threat_protection)
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            user_pool_name=pool_name,
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            sign_in_case_sensitive=False,
            mfa=cognito.Mfa.REQUIRED if config.mfa == "required" else cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS if threat else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=threat,
            deletion_protection=retain,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.group = cognito.UserPoolGroup(
            self,
            "CareTeam",
            user_pool=self.user_pool,
            group_name=config.access_group,
            description="Care managers who may read the readmission worklist",
        )
        self.domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=config.cognito_domain_prefix),
        )
        self.identity_provider = (
            self._federate(config.federation) if config.federation is not None else None
        )
        self.client: cognito.UserPoolClient | None = None
        self._acknowledge()

    @property
    def origin(self) -> str:
        return sign_in_origin(self._config.cognito_domain_prefix)

    def _federate(self, federation: FederationConfig) -> cognito.IUserPoolIdentityProvider:
        mapping = cognito.AttributeMapping(email=cognito.ProviderAttribute.other("email"))
        if federation.type == "saml":
            return cognito.UserPoolIdentityProviderSaml(
                self,
                "Saml",
                user_pool=self.user_pool,
                name=federation.name,
                metadata=cognito.UserPoolIdentityProviderSamlMetadata.url(
                    str(federation.metadata_url)
                ),
                attribute_mapping=mapping,
            )
        return cognito.UserPoolIdentityProviderOidc(
            self,
            "Oidc",
            user_pool=self.user_pool,
            name=federation.name,
            issuer_url=str(federation.issuer_url),
            client_id=str(federation.client_id),
            # A {{resolve:secretsmanager:...}} dynamic reference: resolved by CloudFormation.
            client_secret=SecretValue.secrets_manager(
                str(federation.client_secret_name)
            ).unsafe_unwrap(),
            scopes=["openid", "email"],
            attribute_mapping=mapping,
        )

    def add_page_client(self, page_url: str) -> cognito.UserPoolClient:
        """The page's public client: code grant only, returning to ``page_url``."""
        providers = [cognito.UserPoolClientIdentityProvider.COGNITO]
        if self._config.federation is not None:
            providers = [
                cognito.UserPoolClientIdentityProvider.custom(self._config.federation.name)
            ]
        self.client = self.user_pool.add_client(
            "Page",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=False, user_password=False, custom=False),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[page_url],
                logout_urls=[page_url],
            ),
            supported_identity_providers=providers,
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(12),
        )
        if self.identity_provider is not None:
            self.client.node.add_dependency(self.identity_provider)
        return self.client

    def _acknowledge(self) -> None:
        if self._config.mfa != "required":
            acknowledge(
                self.user_pool,
                "MFA is a per-stage choice (worklist.mfa) and optional on this stage, so that "
                "test users can sign in without enrolling an authenticator; TOTP is offered to "
                "every user, and the prod stage requires it.",
                "AwsSolutions-COG2",
            )
        if self._config.threat_protection != "enforced":
            acknowledge(
                self.user_pool,
                "Threat protection is a per-stage choice (worklist.threat_protection) and not "
                "'enforced' on this stage (in 'audit' Cognito still scores and logs risky "
                "sign-ins without blocking them); the prod stage enforces it.",
                "AwsSolutions-COG3",
            )
