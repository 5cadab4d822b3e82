"""The function's configuration, read once from its environment into a frozen dataclass."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.environment import EnvironmentNames, SettingsError

TABLE_NAME_ENV = "WORKLIST_TABLE_NAME"
ACCESS_GROUP_ENV = "WORKLIST_ACCESS_GROUP"
ALLOWED_ORIGIN_ENV = "WORKLIST_ALLOWED_ORIGIN"
DEFAULT_ACCESS_GROUP = "care-team"
#: What the stack sets (stacks/components/worklist_api.py); the origin once the page exists.
ENVIRONMENT = EnvironmentNames.of(
    required=(TABLE_NAME_ENV, ACCESS_GROUP_ENV), optional=(ALLOWED_ORIGIN_ENV,)
)
#: ``scheme://host[:port]`` exactly as a browser sends it in ``Origin`` (no path, no slash).
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


@dataclass(frozen=True)
class Settings:
    """Where the worklist lives, who may read it and which page may call the API."""

    table_name: str
    access_group: str = DEFAULT_ACCESS_GROUP
    #: The page's origin (the CloudFront distribution's); ``None`` answers no CORS header.
    allowed_origin: str | None = None

    def __post_init__(self) -> None:
        if not self.table_name:
            raise SettingsError(f"{TABLE_NAME_ENV} is not set")
        if not self.access_group:
            raise SettingsError(f"{ACCESS_GROUP_ENV} must not be empty")
        if self.allowed_origin is not None and not _ORIGIN.fullmatch(self.allowed_origin):
            raise SettingsError(f"{ALLOWED_ORIGIN_ENV} must be scheme://host[:port]")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        return cls(
            table_name=env.get(TABLE_NAME_ENV, ""),
            access_group=env.get(ACCESS_GROUP_ENV) or DEFAULT_ACCESS_GROUP,
            allowed_origin=env.get(ALLOWED_ORIGIN_ENV) or None,
        )
