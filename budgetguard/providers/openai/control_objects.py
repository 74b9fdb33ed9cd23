"""OpenAI's control objects as typed values: spend limits, spend alerts, model permissions,
hosted tools, rate limits, and a project (as archive answers it).

Money: limits and alerts travel as integer cents with currency ``USD``; here they are also a
``Decimal`` of dollars (``amount``). ``cents`` turns dollars into cents, rounding up to the cent
(a limit never ends up below what was asked). Every object is frozen and dumps to JSON
(``model_dump(mode="json")``) as it is, for an action log's before and after.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "HOSTED_TOOLS",
    "RATE_LIMIT_FIELDS",
    "AlertChannel",
    "HostedTools",
    "ModelPermissions",
    "Project",
    "RateLimit",
    "SpendAlert",
    "SpendLimit",
    "cents",
    "dollars",
]

#: the hosted tools a project may switch on or off
HOSTED_TOOLS = ("file_search", "web_search", "image_generation", "mcp", "code_interpreter")
#: the per-model limits ``POST .../rate_limits/{id}`` accepts (any subset)
RATE_LIMIT_FIELDS = (
    "max_requests_per_1_minute",
    "max_tokens_per_1_minute",
    "max_images_per_1_minute",
    "max_audio_megabytes_per_1_minute",
    "max_requests_per_1_day",
    "batch_1_day_max_input_tokens",
)


def cents(amount: Decimal | int | str) -> int:
    """USD -> integer cents, rounded up to the cent (``Decimal("10.001")`` -> 1001)."""
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError("an amount must be a finite number of dollars")
    return int((value * 100).to_integral_value(rounding=ROUND_CEILING))


def dollars(amount_cents: int) -> Decimal:
    """Integer cents -> USD as a Decimal with two places."""
    return (Decimal(amount_cents) / 100).quantize(Decimal("0.01"))


class _Object(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SpendLimit(_Object):
    """A hard spend limit of the organisation (``project_id`` None) or of one project.

    ``enforcement`` is the API's ``enforcement.status`` as it came (``inactive``,
    ``enforcing``, or a value not known yet): its meaning is ambiguous (the spec's example
    says ``enforcing`` right after a limit is set), so never act on it alone."""

    project_id: str | None = None
    threshold_cents: int
    currency: str = "USD"
    interval: str = "month"
    enforcement: str = "unknown"

    @property
    def amount(self) -> Decimal:
        return dollars(self.threshold_cents)

    @property
    def enforcing(self) -> bool | None:
        """True for ``enforcing``, False for ``inactive``, None for anything else."""
        return {"enforcing": True, "inactive": False}.get(self.enforcement)

    @classmethod
    def parse(cls, body: dict[str, Any], project_id: str | None) -> SpendLimit:
        expected = "project.spend_limit" if project_id else "organization.spend_limit"
        _expect(body, expected)
        enforcement = body.get("enforcement")
        status = enforcement.get("status") if isinstance(enforcement, dict) else None
        return cls(
            project_id=project_id,
            threshold_cents=_int(body, "threshold_amount"),
            currency=str(body.get("currency")),
            interval=str(body.get("interval")),
            enforcement=str(status) if isinstance(status, str) else "unknown",
        )


class AlertChannel(_Object):
    """Where a spend alert goes: e-mail only, for now."""

    type: Literal["email"] = "email"
    recipients: tuple[str, ...]
    subject_prefix: str | None = None


class SpendAlert(_Object):
    """An e-mail spend alert of the organisation or of one project (``id`` is the API's)."""

    id: str
    project_id: str | None = None
    threshold_cents: int
    currency: str = "USD"
    interval: str = "month"
    channel: AlertChannel

    @property
    def amount(self) -> Decimal:
        return dollars(self.threshold_cents)

    @classmethod
    def parse(cls, body: dict[str, Any], project_id: str | None) -> SpendAlert:
        _expect(body, "project.spend_alert" if project_id else "organization.spend_alert")
        channel = body.get("notification_channel")
        if not isinstance(channel, dict) or not isinstance(channel.get("recipients"), list):
            raise ValueError("notification_channel is not an e-mail channel")
        return cls(
            id=str(body["id"]),
            project_id=project_id,
            threshold_cents=_int(body, "threshold_amount"),
            currency=str(body.get("currency")),
            interval=str(body.get("interval")),
            channel=AlertChannel(
                recipients=tuple(str(r) for r in channel["recipients"]),
                subject_prefix=channel.get("subject_prefix"),
            ),
        )

    def body(self) -> dict[str, Any]:
        """The whole body a create or an update takes (an update replaces all of it)."""
        channel: dict[str, Any] = {"type": "email", "recipients": list(self.channel.recipients)}
        if self.channel.subject_prefix is not None:
            channel["subject_prefix"] = self.channel.subject_prefix
        return {
            "threshold_amount": self.threshold_cents,
            "currency": "USD",
            "interval": "month",
            "notification_channel": channel,
        }


class ModelPermissions(_Object):
    """A project's model allow list or deny list (exact model ids; a write replaces it)."""

    project_id: str
    mode: Literal["allow_list", "deny_list"]
    model_ids: tuple[str, ...]

    @classmethod
    def parse(cls, body: dict[str, Any], project_id: str) -> ModelPermissions:
        _expect(body, "project.model_permissions")
        ids = body.get("model_ids")
        if not isinstance(ids, list):
            raise ValueError("model_ids is not a list")
        return cls(project_id=project_id, mode=body["mode"], model_ids=tuple(map(str, ids)))


class HostedTools(_Object):
    """Which hosted tools a project may use: tool name -> enabled."""

    project_id: str
    enabled: dict[str, bool]

    @classmethod
    def parse(cls, body: dict[str, Any], project_id: str) -> HostedTools:
        enabled: dict[str, bool] = {}
        for tool in HOSTED_TOOLS:
            item = body.get(tool)
            if not isinstance(item, dict) or not isinstance(item.get("enabled"), bool):
                raise ValueError(f"{tool} is not a hosted tool permission")
            enabled[tool] = item["enabled"]
        return cls(project_id=project_id, enabled=enabled)


class RateLimit(_Object):
    """One model's rate limits in a project; ``limits`` holds the fields the API gave."""

    id: str
    project_id: str
    model: str
    limits: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def parse(cls, body: dict[str, Any], project_id: str) -> RateLimit:
        _expect(body, "project.rate_limit")
        limits = {f: _int(body, f) for f in RATE_LIMIT_FIELDS if body.get(f) is not None}
        return cls(
            id=str(body["id"]), project_id=project_id, model=str(body["model"]), limits=limits
        )


class Project(_Object):
    """A project as the archive call answers it."""

    id: str
    name: str | None = None
    status: str | None = None
    archived_at: int | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Project:
        _expect(body, "organization.project")
        return cls(
            id=str(body["id"]),
            name=body.get("name"),
            status=body.get("status"),
            archived_at=body.get("archived_at"),
        )


def _expect(body: dict[str, Any], kind: str) -> None:
    if body.get("object") != kind:
        raise ValueError(f"the answer is not a {kind}")


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} is not an integer")
    return value
