"""The JSON bodies of the API: what each route reads and answers, as the OpenAPI document shows them.

The one rule: a body only describes and parses; what a value may be is checked by the operations
(one rule, one place), except what JSON itself decides (types, unknown fields, lengths of lists).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ...delivery.line_client import DEFAULT_API_URL
from ...operations import MAX_BATCH, MAX_REASON, MAX_REPLAY


class Problem(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    error: str
    message: str
    problems: list[Problem] = []


class AuthenticationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="1-64 letters, digits, '_', '.', '-'")
    access_token: SecretStr | None = Field(default=None, description="Long-lived channel access token")
    channel_id: str | None = Field(default=None, description="Channel ID, with channel_secret: tokens are minted")
    channel_secret: SecretStr | None = Field(
        default=None,
        description="Channel secret: with channel_id, tokens are minted; with access_token, it only checks "
        "the signature of LINE's webhooks (POST /line/webhook/{name}). Write-only: never returned.",
    )
    api_url: str = DEFAULT_API_URL
    skip_test: bool = Field(default=False, description="Store without testing the credentials with LINE")


class AuthenticationOut(BaseModel):
    name: str
    kind: str
    api_url: str
    channel_id: str | None
    bot_user_id: str | None
    bot_name: str | None
    created_at: float
    paused: bool
    paused_reason: str | None
    webhook_path: str = Field(description="Give LINE https://YOUR-HOST + this as the channel's webhook URL")
    webhook_secret_set: bool = Field(description="Whether the channel secret that signs webhooks is stored")
    blocked_users: int = Field(description="Users the channel's webhooks last said blocked the account")
    forward_webhook: str | None = Field(
        default=None, description="Where verified webhooks are re-sent (its query, if any, is not shown)"
    )


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="1-64 letters, digits, '_', '.', '-'")
    role: Literal["admin", "operator", "trigger", "read"] = "admin"


class ApiKeyOut(BaseModel):
    name: str
    role: str
    created_at: float
    revoked_at: float | None


class ApiKeyCreated(BaseModel):
    name: str
    role: str
    key: str = Field(description="The key itself: shown this once, stored only as a hash")


class ActivationIn(BaseModel):
    """An activation. On create, fields left out come from ``copy_from`` or the defaults."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    copy_from: str | None = None
    description: str | None = None
    authentication: str | None = None
    recipient: str | None = Field(default=None, description="Recipient ID template, e.g. {{line_user_id}}")
    messages: list[Any] | None = Field(default=None, description="Messages Payload: 1-5 LINE message objects")
    max_retries: int | None = Field(default=None, description="Maximum Number Of Retry (default 3)")
    initial_retry_delay: float | None = Field(default=None, description="Initial Retry Delay, seconds (default 2)")
    retry_delay_multiple: float | None = Field(default=None, description="Retry Delay Multiple (default 2)")
    notification_disabled: bool | None = None
    aggregation_unit: str | None = Field(
        default=None,
        description="customAggregationUnits of every push (1-30 of A-Z a-z 0-9 _); null: none; "
        "left out: derived from the name",
    )
    no_aggregation_unit: bool | None = Field(default=None, description="true: pushes carry no aggregation unit")
    frequency_cap: str | None = Field(
        default=None, description='At most N pushes to one recipient per rolling PERIOD: "1/24h", "3/7d"; "" clears'
    )
    # Plain text here: the activation's own check reports every bad field at once.
    over_cap: str | None = Field(default=None, description="Over the cap: suppress (default) or defer")
    quiet_hours: str | None = Field(default=None, description='"HH:MM-HH:MM" (may wrap midnight); "" clears')
    time_zone: str | None = Field(default=None, description="IANA zone of the quiet hours (default Asia/Tokyo)")
    time_zone_attribute: str | None = Field(
        default=None, description="Event attribute with the recipient's own IANA zone (used when it is one)"
    )
    in_quiet_hours: str | None = Field(
        default=None, description="A trigger inside quiet hours: defer (default) until they end, or drop"
    )

    def fields(self) -> dict[str, Any]:
        """The activation's settings given (for a create: not its name, not where it is copied from)."""
        return self._unit_given(self.model_dump(exclude_none=True, exclude={"copy_from", "name"}))

    def changes(self) -> dict[str, Any]:
        """Everything given (an update refuses a new name or a ``copy_from``)."""
        return self._unit_given(self.model_dump(exclude_none=True))

    def _unit_given(self, fields: dict[str, Any]) -> dict[str, Any]:
        # A null aggregation_unit is a choice ("none"), not a field left out.
        if "aggregation_unit" in self.model_fields_set and self.aggregation_unit is None:
            fields["no_aggregation_unit"] = True
        return fields


class AuthenticationUpdate(BaseModel):
    """What may change without new credentials; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    forward_webhook: str | None = Field(
        default=None,
        description="Re-send every verified LINE webhook request, body and signature untouched, to this URL "
        "(its host must be in LINEOA_EXPORT_ALLOWED_FORWARD_HOSTS); null stops forwarding",
    )
    channel_secret: SecretStr | None = Field(
        default=None, description="The channel secret that signs webhooks (token authentications); write-only"
    )

    @property
    def stops_forwarding(self) -> bool:
        return "forward_webhook" in self.model_fields_set and self.forward_webhook is None


class RotateIn(BaseModel):
    """The new secret: an access token for a token authentication, else the channel's new secret."""

    model_config = ConfigDict(extra="forbid")
    access_token: SecretStr | None = None
    channel_secret: SecretStr | None = None
    skip_test: bool = Field(default=False, description="Store without testing the new secret with LINE")


class ActivationOut(BaseModel):
    name: str
    description: str
    authentication: str
    recipient: str
    messages: Any
    max_retries: int
    initial_retry_delay: float
    retry_delay_multiple: float
    notification_disabled: bool
    aggregation_unit: str | None = None
    aggregation_unit_status: dict[str, Any] = Field(
        default_factory=dict, description="This month's state of the unit: none, unused, in_use or withheld"
    )
    frequency_cap: str | None = None
    over_cap: str = "suppress"
    quiet_hours: str | None = None
    time_zone: str = "Asia/Tokyo"
    time_zone_attribute: str | None = None
    in_quiet_hours: str = "defer"
    paused: bool
    paused_reason: str | None
    created_at: float
    updated_at: float
    counts: dict[str, int] = {}


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: dict[str, Any] | None = Field(default=None, description="One event: profile attributes")
    events: list[dict[str, Any]] | None = Field(default=None, description=f"Up to {MAX_BATCH} events")


class TriggerOut(BaseModel):
    results: list[dict[str, Any]]
    counts: dict[str, int]


class SampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: dict[str, Any] | None = None


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_ids: list[str] | None = Field(
        default=None, max_length=MAX_REPLAY, description=f"Up to {MAX_REPLAY} failed events; all when left out"
    )


class ReplayOut(BaseModel):
    replayed: list[str]
    not_replayable: list[str]


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="paused through the API", max_length=MAX_REASON)


class LogPage(BaseModel):
    events: list[dict[str, Any]]
    next_cursor: str | None


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None
