"""Every built-in HTTP notifier passes the conformance kit plugin authors are given."""

from __future__ import annotations

import pytest
from budgetguard_slack import SlackNotifier, SlackSettings
from budgetguard_webhook import WebhookNotifier, WebhookSettings

from budgetguard.notify import DeliveryError, Message
from budgetguard.testing import assert_conformant

SECRET = "whsec-conformance-0123456789"
TOKEN = "xoxb-conformance-0123456789"
HOOK = "T000/B000/conformancehook"


def test_the_webhook_notifier_conforms() -> None:
    assert_conformant(
        lambda url: WebhookNotifier(WebhookSettings(url=f"{url}/{HOOK}", secret=SECRET)),
        secrets=[SECRET, HOOK],
    )


def test_the_slack_incoming_webhook_conforms() -> None:
    assert_conformant(
        lambda url: SlackNotifier(SlackSettings.model_validate({"webhook_url": f"{url}/{HOOK}"})),
        secrets=[HOOK],
    )


class Leaky:
    """What the kit must catch: secrets in the repr and the error, failures misclassified."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"Leaky({self.url}/{HOOK})"

    def send(self, message: Message) -> None:
        raise DeliveryError(f"failed posting to {self.url}/{HOOK}", retryable=True)


def test_the_kit_catches_leaks_and_misclassified_failures() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_conformant(Leaky, secrets=[HOOK])
    text = str(caught.value)
    assert "repr shows a secret" in text
    assert "the error shows a secret" in text
    assert "HTTP 200: raised" in text  # a delivered message must not raise
    assert "HTTP 400: retryable=True, expected False" in text
