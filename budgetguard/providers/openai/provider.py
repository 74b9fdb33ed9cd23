"""OpenAI as a ``providers.base.Provider``: the usage and costs reader (``AdminClient``) and
the controls writer (``Controls``), each built from a key, a base URL and a transport."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from budgetguard.providers.base import Provider
from budgetguard.providers.openai.client import AdminClient
from budgetguard.providers.openai.controls import Controls

__all__ = ["OPENAI", "OpenAIProvider"]


class OpenAIProvider:
    """``OPENAI.reader(key, base_url)`` reads; ``OPENAI.controls(action_key, base_url)`` acts."""

    name = "openai"

    def reader(
        self,
        key: SecretStr | str | None,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> AdminClient:
        return AdminClient(key, base_url, transport=transport, **options)

    def controls(
        self,
        key: SecretStr | str | None,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> Controls:
        return Controls(key, base_url, transport=transport, **options)


#: typed as the seam, so mypy holds ``OpenAIProvider`` to ``providers.base.Provider``
OPENAI: Provider[AdminClient, Controls] = OpenAIProvider()
