"""What the simulator is told to be: its channels, its faults and its script.

One :class:`SimulatorOptions` object configures a running simulator. It stays mutable while the
simulator runs: the request handlers read it live on every request, so a test may assign a field
(``sim.options.fault_503 = 0.5``) or send ``PATCH /__sim/options`` with a JSON merge patch (see
:func:`merge_patch`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_CHANNEL_ID = "1234567890"
DEFAULT_CHANNEL_SECRET = "demo-channel-secret-0123456789ab"
DEFAULT_ACCESS_TOKEN = "demo-access-token"
DEFAULT_BOT_USER_ID = "U" + "0123456789abcdef" * 2

#: Script entries that are words rather than status codes.
SCRIPT_WORDS = frozenset({"monthly", "drop", "hang", "accept-then-drop"})

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class ChannelConfig(BaseModel):
    """One LINE channel (one official account) the simulator plays."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    channel_id: str = Field(default=DEFAULT_CHANNEL_ID, pattern=r"^[0-9]+$")
    channel_secret: str = Field(default=DEFAULT_CHANNEL_SECRET, min_length=1)
    #: Long-lived channel access tokens this channel accepts (they never expire).
    access_tokens: list[str] = Field(default_factory=lambda: [DEFAULT_ACCESS_TOKEN])
    bot_user_id: str = Field(default=DEFAULT_BOT_USER_ID, pattern=r"^U[0-9a-f]{32}$")
    basic_id: str = "@000demo"
    display_name: str = "Demo Official Account"
    #: The bot's profile picture (``pictureUrl`` of bot info; LINE leaves it out when there is none).
    #: An https URL, as LINE's: a console shows it by letting the browser load it.
    picture_url: str | None = Field(default=None, pattern=r"^https://[^\s\"'<>]+$")
    #: Monthly message quota (messages counted per recipient); ``None`` means no limit.
    quota: int | None = Field(default=None, ge=0)
    #: Quota already used when the simulator starts (as if earlier pushes happened this month).
    initial_usage: int = Field(default=0, ge=0)
    #: True: every bot API call answers 403 (account or plan not allowed this API).
    forbidden: bool = False
    #: Token bucket of the push endpoint (and of validate, quota and bot info, each its own bucket).
    rate_limit_per_second: float = Field(default=2000.0, gt=0)
    #: Bucket size; ``None`` means one second of tokens, as LINE does.
    burst: float | None = Field(default=None, gt=0)
    #: Token bucket of the multicast endpoint.
    multicast_rate_per_second: float = Field(default=200.0, gt=0)
    #: True: every push and multicast to this channel hangs (``hang_seconds``, then the connection
    #: closes): one LINE channel having an incident while the others are fine.
    hang: bool = False
    #: Every push and multicast to this channel answers this status (e.g. 500: a 5xx storm on one OA).
    fail_status: int | None = Field(default=None, ge=400, le=599)
    #: Latency of this channel's pushes, milliseconds (instead of the simulator-wide ``latency_ms``).
    latency_ms: float | None = Field(default=None, ge=0.0)
    #: Aggregation units used this month before the simulator started (LINE allows 1,000).
    prior_aggregation_units: int = Field(default=0, ge=0)

    @property
    def effective_burst(self) -> float:
        return self.rate_limit_per_second if self.burst is None else self.burst


class EngagementConfig(BaseModel):
    """How often a simulated recipient looks: the source of the statistics per unit."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: Share of accepted pushes whose recipient opens them (every bubble is then displayed).
    open_rate: Probability = 0.6
    #: Share of opened pushes in which the recipient opens a given URL.
    click_rate: Probability = 0.3
    #: Share of opened video or audio bubbles that are played.
    media_play_rate: Probability = 0.5


def _script_entry_ok(entry: int | str) -> bool:
    if isinstance(entry, int):
        try:
            HTTPStatus(entry)
        except ValueError:
            return False
        return 400 <= entry <= 599
    return entry in SCRIPT_WORDS


class SimulatorOptions(BaseModel):
    """Everything a simulator run can be told. All probabilities are 0..1 per request."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    channels: list[ChannelConfig] = Field(default_factory=lambda: [ChannelConfig()], min_length=1)

    # Random faults on the sending endpoints (push, multicast), drawn from one seeded generator.
    # One uniform draw per request picks at most one fault, in this order: drop, hang, 429, 500,
    # 502, 503, 504. A fault never accepts the request and never uses its retry key up.
    fault_500: Probability = 0.0
    fault_502: Probability = 0.0
    fault_503: Probability = 0.0
    fault_504: Probability = 0.0
    fault_rate_429: Probability = 0.0
    drop_probability: Probability = 0.0
    hang_probability: Probability = 0.0
    hang_seconds: float = Field(default=30.0, ge=0.0)
    #: Added to every push (and multicast) before it is answered.
    latency_ms: float = Field(default=0.0, ge=0.0)
    #: Seed of the fault generator; ``None`` seeds from the OS.
    seed: int | None = None
    #: Lifetime of tokens minted by ``POST /oauth2/v3/token``.
    token_ttl_seconds: int = Field(default=900, gt=0)

    #: Deterministic answers for pushes, keyed by recipient id (``to``). Each push to that
    #: recipient pops the next entry and answers with it instead of processing normally:
    #: a status code (400, 401, 403, 429, 500, 502, 503, 504 or any other 4xx/5xx), or
    #: ``"monthly"`` (429 monthly limit), ``"drop"`` (close without answer), ``"hang"`` (answer
    #: nothing for ``hang_seconds``, then close), ``"accept-then-drop"`` (accept the push, then
    #: close without answer: LINE got it but the answer was lost).
    script: dict[str, list[int | str]] = Field(default_factory=dict)
    #: Where the statistics per unit come from (see simulator/insight.py).
    engagement: EngagementConfig = Field(default_factory=EngagementConfig)

    @field_validator("script")
    @classmethod
    def _check_script(cls, value: dict[str, list[int | str]]) -> dict[str, list[int | str]]:
        for recipient, entries in value.items():
            for i, entry in enumerate(entries):
                if not _script_entry_ok(entry):
                    raise ValueError(
                        f"script[{recipient!r}][{i}]: {entry!r} is neither a 4xx/5xx status "
                        f"nor one of {sorted(SCRIPT_WORDS)}"
                    )
        return value

    @model_validator(mode="after")
    def _check_channels(self) -> SimulatorOptions:
        ids = [c.channel_id for c in self.channels]
        if len(set(ids)) != len(ids):
            raise ValueError("channel ids must be unique")
        return self

    def channel(self, channel_id: str) -> ChannelConfig | None:
        for ch in self.channels:
            if ch.channel_id == channel_id:
                return ch
        return None

    @property
    def fault_total(self) -> float:
        return (
            self.drop_probability
            + self.hang_probability
            + self.fault_rate_429
            + self.fault_500
            + self.fault_502
            + self.fault_503
            + self.fault_504
        )


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def merge_patch(options: SimulatorOptions, patch: dict[str, Any]) -> SimulatorOptions:
    """A new, validated :class:`SimulatorOptions`: ``options`` with ``patch`` merged in.

    JSON merge patch (RFC 7396) semantics, with one addition: ``channels`` may be an object keyed
    by channel id, which merges into that channel (or adds a channel with that id), e.g.
    ``{"channels": {"1234567890": {"quota": 5000}}}``. A list replaces all channels.
    Raises :class:`pydantic.ValidationError` (or :class:`ValueError`) when the result is invalid.
    """
    current = options.model_dump()
    patch = dict(patch)
    channels_patch = patch.pop("channels", None)
    merged = _merge(current, patch)
    if isinstance(channels_patch, dict):
        channels: list[dict[str, Any]] = list(current["channels"])
        for channel_id, channel_patch in channels_patch.items():
            index = next((i for i, c in enumerate(channels) if c["channel_id"] == channel_id), None)
            if channel_patch is None:
                if index is not None:
                    del channels[index]
                continue
            if not isinstance(channel_patch, dict):
                raise ValueError(f"channels[{channel_id!r}] must be an object")
            if index is None:
                channels.append({**channel_patch, "channel_id": channel_id})
            else:
                channels[index] = _merge(channels[index], channel_patch)
        merged["channels"] = channels
    elif channels_patch is not None:
        merged["channels"] = channels_patch
    return SimulatorOptions.model_validate(merged)


def apply_in_place(options: SimulatorOptions, new: SimulatorOptions) -> None:
    """Copy every field of ``new`` onto ``options`` (whoever holds ``options`` sees the change)."""
    for name in SimulatorOptions.model_fields:
        setattr(options, name, getattr(new, name))
