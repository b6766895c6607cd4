"""The pieces every config section shares: the domain names, the error, the base model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from excise.errors import UserError

DOMAINS = ("forget", "adjacent", "retain")


class ConfigError(UserError, ValueError):
    """A configuration problem the user must fix; the message lists every problem."""


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
