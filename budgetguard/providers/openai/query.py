"""A query of one endpoint, validated against the endpoint table before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from budgetguard.providers.openai.endpoints import FILTER_VALUES, Endpoint, endpoint
from budgetguard.providers.openai.errors import InvalidQueryError

__all__ = ["Query", "to_unix"]


def to_unix(value: datetime | int, name: str) -> int:
    """Unix seconds from an aware datetime or an int; a naive datetime is refused."""
    if isinstance(value, bool):
        raise InvalidQueryError(f"{name} must be a time, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidQueryError(f"{name} must be timezone-aware (got a naive datetime)")
        return int(value.timestamp())
    raise InvalidQueryError(
        f"{name} must be a datetime or Unix seconds, got {type(value).__name__}"
    )


@dataclass(frozen=True)
class Query:
    """``endpoint`` over ``[start_time, end_time)`` with every parameter the API takes.

    ``limit`` defaults to the maximum for the bucket width, so a range costs the fewest
    requests. ``filters`` maps the API's filter names (``project_ids``, ``batch``...) to values.
    """

    endpoint: Endpoint
    start_time: int
    end_time: int | None = None
    bucket_width: str = "1d"
    group_by: tuple[str, ...] = ()
    limit: int | None = None
    filters: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        endpoint_name: str | Endpoint,
        *,
        start_time: datetime | int,
        end_time: datetime | int | None = None,
        bucket_width: str = "1d",
        group_by: Iterable[str] = (),
        limit: int | None = None,
        **filters: Any,
    ) -> Query:
        """Build and validate; raises ``InvalidQueryError`` with a message that says what."""
        ep = endpoint_name if isinstance(endpoint_name, Endpoint) else _lookup(endpoint_name)
        query = cls(
            endpoint=ep,
            start_time=to_unix(start_time, "start_time"),
            end_time=None if end_time is None else to_unix(end_time, "end_time"),
            bucket_width=bucket_width,
            group_by=tuple(group_by),
            limit=limit,
            filters={k: v for k, v in filters.items() if v is not None},
        )
        query.validate()
        return query

    @property
    def effective_limit(self) -> int:
        return self.limit if self.limit is not None else self.endpoint.max_limit(self.bucket_width)

    def validate(self) -> None:
        ep = self.endpoint
        where = f"{ep.name}: "
        if self.bucket_width not in ep.bucket_widths:
            raise InvalidQueryError(
                f"{where}bucket_width {self.bucket_width!r} not allowed; "
                f"use one of {', '.join(ep.bucket_widths)}"
            )
        if self.start_time < 0:
            raise InvalidQueryError(f"{where}start_time must be >= 0")
        if self.end_time is not None and self.end_time <= self.start_time:
            raise InvalidQueryError(f"{where}start_time must be before end_time")
        low, high = 1, ep.max_limit(self.bucket_width)
        if self.limit is not None and not low <= self.limit <= high:
            raise InvalidQueryError(
                f"{where}limit {self.limit} out of range {low}..{high} "
                f"for bucket_width {self.bucket_width}"
            )
        for group in self.group_by:
            if group not in ep.group_by:
                raise InvalidQueryError(
                    f"{where}cannot group by {group!r}; allowed: {', '.join(sorted(ep.group_by))}"
                )
        if len(set(self.group_by)) != len(self.group_by):
            raise InvalidQueryError(f"{where}group_by lists a value twice")
        for name, value in self.filters.items():
            self._validate_filter(name, value)

    def _validate_filter(self, name: str, value: Any) -> None:
        ep = self.endpoint
        if name not in ep.filters:
            allowed = ", ".join(sorted(ep.filters))
            raise InvalidQueryError(f"{ep.name}: unknown filter {name!r}; allowed: {allowed}")
        if name == "batch":
            if not isinstance(value, bool):
                raise InvalidQueryError(f"{ep.name}: filter batch must be true or false")
            return
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise InvalidQueryError(f"{ep.name}: filter {name} must be a list of strings")
        if not value:
            raise InvalidQueryError(f"{ep.name}: filter {name} must not be empty")
        allowed_values = FILTER_VALUES.get(name)
        for item in value:
            if not isinstance(item, str) or not item:
                raise InvalidQueryError(f"{ep.name}: filter {name} must hold non-empty strings")
            if allowed_values is not None and item not in allowed_values:
                raise InvalidQueryError(
                    f"{ep.name}: {name} value {item!r} not allowed; "
                    f"use one of {', '.join(sorted(allowed_values))}"
                )

    def params(self, page: str | None = None) -> list[tuple[str, str | int | float | bool | None]]:
        """Query-string pairs; arrays as repeated keys (``group_by=a&group_by=b``)."""
        pairs: list[tuple[str, str | int | float | bool | None]] = [
            ("start_time", str(self.start_time))
        ]
        if self.end_time is not None:
            pairs.append(("end_time", str(self.end_time)))
        pairs.append(("bucket_width", self.bucket_width))
        pairs.append(("limit", str(self.effective_limit)))
        pairs.extend(("group_by", group) for group in self.group_by)
        for name in sorted(self.filters):
            value = self.filters[name]
            if isinstance(value, bool):
                pairs.append((name, "true" if value else "false"))
            else:
                pairs.extend((name, item) for item in value)
        if page is not None:
            pairs.append(("page", page))
        return pairs


def _lookup(name: str) -> Endpoint:
    try:
        return endpoint(name)
    except ValueError as exc:
        raise InvalidQueryError(str(exc)) from None
