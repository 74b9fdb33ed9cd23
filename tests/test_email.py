"""Email against a real SMTP server (aiosmtpd): plain, STARTTLS with a self-signed
certificate, implicit TLS, AUTH, and the failures the outbox must tell apart."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from budgetguard_email import EmailNotifier as EmailSender
from budgetguard_email import EmailSettings, subject

from budgetguard.notify import Alert, DeliveryError

PASSWORD = "smtp-password-secret"
PAYLOAD = {
    "type": "budgetguard.alert",
    "budget": "org-month",
    "group": {},
    "kind": "threshold",
    "severity": "critical",
    "threshold": 1.0,
    "spend": 5210.4,
    "limit": 5000.0,
    "key": "k-42",
    "fired_at": "2026-11-22T10:00:00Z",
    "message": "CRITICAL org-month: $5,210.40 of $5,000.00 (104%)",
}
ALERT = Alert.from_payload(PAYLOAD)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # let the server answer 235 or 535


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no self-signed certificate for TLS tests")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(inbox: Inbox, **kwargs: Any) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def plain() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = start(inbox, authenticator=authenticator, auth_require_tls=False)
    yield inbox, controller.port
    controller.stop()


def sender(port: int, **settings: Any) -> EmailSender:
    return EmailSender(
        EmailSettings.model_validate(
            {
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "starttls": False,
                "from": "budgetguard@example.com",
                "to": ["oncall@example.com", "fin@example.com"],
                "timeout": 5,
                **settings,
            }
        )
    )


def test_plain_smtp_multipart_with_the_contracts_subject(plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    sender(port).send(ALERT)
    (message,) = inbox.messages
    assert message["Subject"] == "[budgetguard] CRITICAL org-month: $5,210 of $5,000 (104%)"
    assert message["To"] == "oncall@example.com, fin@example.com"
    assert message["X-BudgetGuard-Key"] == "k-42"
    assert inbox.envelopes[0].rcpt_tos == ["oncall@example.com", "fin@example.com"]
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in message.walk()
        if not p.is_multipart()
    }
    assert set(parts) == {"text/plain", "text/html"}
    assert "Spend: $5,210.40" in parts["text/plain"]
    assert "<table" in parts["text/html"] and "style=" in parts["text/html"]


def test_auth_with_the_right_and_the_wrong_password(plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    sender(port, username="bg", password=PASSWORD).send(ALERT)
    assert len(inbox.messages) == 1
    with pytest.raises(DeliveryError) as info:
        sender(port, username="bg", password="wrong").send(ALERT)
    assert not info.value.retryable and "login refused" in str(info.value)


def test_starttls_with_a_self_signed_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = start(
        inbox, tls_context=context, require_starttls=True, authenticator=authenticator
    )
    port = controller.port
    try:
        sender(port, starttls=True, ca_file=str(cert), username="bg", password=PASSWORD).send(ALERT)
        assert len(inbox.messages) == 1
        with pytest.raises(DeliveryError) as untrusted:  # no CA given: the cert is refused
            sender(port, starttls=True).send(ALERT)
        assert not untrusted.value.retryable
    finally:
        controller.stop()


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = start(inbox, ssl_context=context)
    port = controller.port
    try:
        sender(port, ssl=True, ca_file=str(cert)).send(ALERT)
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


def test_a_down_server_is_retried() -> None:
    with pytest.raises(DeliveryError) as info:
        sender(9).send(ALERT)
    assert info.value.retryable


def test_subjects_of_other_kinds() -> None:
    assert subject(
        Alert.from_payload({**PAYLOAD, "kind": "resolved", "severity": "ok"})
    ).startswith("[budgetguard] RESOLVED org-month")
    assert subject(
        Alert.from_payload({**PAYLOAD, "kind": "no_data", "group": {"project": "p\nx"}})
    ) == ("[budgetguard] NO DATA org-month [project=p x]")


def test_no_password_in_errors_logs_or_reprs(
    plain: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, port = plain
    mail = sender(port, username="bg", password=PASSWORD + "x")
    with pytest.raises(DeliveryError) as info:
        mail.send(ALERT)
    for text in (str(info.value), repr(mail), repr(mail.settings), caplog.text):
        assert PASSWORD not in text


def test_a_plain_relay_with_default_settings_just_works() -> None:
    """The settings a user writes first (host, port, to) against a relay that offers no
    STARTTLS: ``starttls: auto`` sends in the clear, since no password is at stake."""
    inbox = Inbox()
    controller = start(inbox)  # aiosmtpd's defaults: no TLS, no AUTH
    try:
        settings = {"smtp_host": "127.0.0.1", "smtp_port": controller.port, "to": "a@example.com"}
        EmailSender(EmailSettings.model_validate(settings)).send(ALERT)
        assert len(inbox.messages) == 1
        assert inbox.envelopes[0].rcpt_tos == ["a@example.com"]
    finally:
        controller.stop()


def test_starttls_required_but_not_offered_is_permanent_and_says_what_to_change() -> None:
    inbox = Inbox()
    controller = start(inbox, authenticator=authenticator, auth_require_tls=False)
    try:
        for settings in ({"starttls": True}, {"starttls": "auto", "username": "bg"}):
            with pytest.raises(DeliveryError) as info:
                sender(controller.port, password=PASSWORD, **{"username": "bg", **settings}).send(
                    ALERT
                )
            assert not info.value.retryable
            assert "offers no STARTTLS" in str(info.value) and "ssl: true" in str(info.value)
            assert PASSWORD not in str(info.value)
        assert inbox.messages == []  # the password never went in clear
    finally:
        controller.stop()


def test_refused_recipients_are_permanent_and_name_the_setting() -> None:
    class Refusing(Inbox):
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            return "550 no such user"

    controller = start(Refusing())
    try:
        with pytest.raises(DeliveryError) as info:
            sender(controller.port).send(ALERT)
        assert not info.value.retryable and "check 'to'" in str(info.value)
    finally:
        controller.stop()


def test_starttls_settings_are_checked() -> None:
    base = {"smtp_host": "h", "to": "a@example.com"}
    assert EmailSettings.model_validate(base).starttls == "auto"
    assert EmailSettings.model_validate({**base, "starttls": "false"}).starttls is False
    assert EmailSettings.model_validate({**base, "ssl": True}).port == 465
    with pytest.raises(ValueError, match="choose one"):
        EmailSettings.model_validate({**base, "ssl": True, "starttls": True})


def test_a_digest_carries_its_charts_as_inline_images_beside_the_text(
    plain: tuple[Inbox, int],
) -> None:
    """The MIME structure a mail client gets: text and HTML alternatives, the HTML with its
    charts as related PNG parts referenced by Content-ID, each a real image."""
    from datetime import date
    from decimal import Decimal
    from io import BytesIO

    from PIL import Image

    from budgetguard.notify import Digest, DigestBurnup

    days = [date(2026, 11, 9 + i) for i in range(7)]
    digest = Digest(
        key="digest-week-2026-11-09",
        title="Weekly spend digest · 2026-11-09 – 2026-11-15",
        summary="$1,405.38 spent 2026-11-09 – 2026-11-15",
        period="week",
        start=days[0],
        end=date(2026, 11, 16),
        total=Decimal("1405.38"),
        previous_total=Decimal("1300"),
        daily=tuple((d, None if i == 3 else Decimal(100 + 20 * i)) for i, d in enumerate(days)),
        burnup=(
            DigestBurnup(
                "org-month",
                Decimal(6000),
                Decimal("4270.66"),
                date(2026, 11, 1),
                date(2026, 12, 1),
                tuple((date(2026, 11, 1 + i), Decimal(195 * (i + 1))) for i in range(22)),
            ),
            DigestBurnup(
                "<b>team</b>",
                Decimal(500),
                Decimal(250),
                date(2026, 11, 1),
                date(2026, 12, 1),
                ((date(2026, 11, 1), Decimal(250)),),
            ),
        ),
    ).with_payload()
    inbox, port = plain
    sender(port).send(Digest.from_payload(digest.payload))  # as the outbox hands it over
    (message,) = inbox.messages
    assert message.get_content_type() == "multipart/alternative"
    text, related = message.get_payload()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html" and len(images) == 3
    html = html_part.get_payload(decode=True).decode()
    for image in images:
        assert image.get_content_type() == "image/png"
        assert image["Content-Disposition"].startswith("inline")
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html  # each image is shown, with its caption beside
        with Image.open(BytesIO(image.get_payload(decode=True))) as png:
            assert png.format == "PNG" and png.size[0] == 520
            assert len(png.convert("RGB").getcolors(1 << 16) or ()) > 3  # drawn, not blank
    assert "org-month: $4,270.66 of $6,000.00 this period" in html
    assert "&lt;b&gt;team&lt;/b&gt;" in html and "<b>team" not in html
    plain_text = text.get_payload(decode=True).decode()
    assert "Daily spend" in plain_text and "no data" in plain_text and "█" in plain_text
