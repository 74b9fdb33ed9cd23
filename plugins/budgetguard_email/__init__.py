"""The ``email`` notifier: SMTP (STARTTLS, implicit TLS, AUTH), multipart text and HTML; a
digest's charts (daily bars, top budgets' burn-up) ride along as inline PNG images
(``multipart/related``, referenced by Content-ID), their words beside them.

Subject: ``[budgetguard] CRITICAL org-month: $5,210 of $5,000 (104%)``. ``starttls: auto``
(the default) upgrades when the server offers it and requires it when a username is set (a
password never goes in clear); ``true`` requires it, ``false`` never upgrades; ``ssl: true``
is implicit TLS (port 465). Failures are classified once, here: a refused login, STARTTLS
required but not offered, refused recipients or sender, a TLS failure and any 5xx answer are
permanent and say what to change; a 4xx answer, a timeout, a refused or dropped connection
are temporary, retried by the outbox.
"""

from __future__ import annotations

import html
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from budgetguard.notify import (
    Alert,
    DeliveryError,
    Digest,
    Message,
    NotifierSettings,
    NotifierType,
    digest_chart_text,
    digest_charts,
    escape_html,
    hookimpl,
    money,
    plain_text,
    secret_problem,
    signed_percent,
)

__all__ = ["EmailNotifier", "EmailSettings", "render_digest", "render_email", "subject"]

log = logging.getLogger("budgetguard.notify.email")
_COLOUR = {"critical": "#d92d20", "warning": "#b54708", "ok": "#067647", "unknown": "#475467"}
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_FONT = "font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#101828"


class EmailSettings(NotifierSettings):
    """SMTP delivery: STARTTLS when offered (required with a username), or implicit TLS."""

    model_config = ConfigDict(  # the rules of ``_tls``, for the JSON Schema
        json_schema_extra={
            "allOf": [
                {
                    "not": {
                        "required": ["ssl", "starttls"],
                        "properties": {"ssl": {"const": True}, "starttls": {"const": True}},
                    }
                },
                {"if": {"required": ["password"]}, "then": {"required": ["username"]}},
            ]
        }
    )
    type: Literal["email"] = "email"
    smtp_host: str = Field(min_length=1)
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: Literal["auto"] | bool = "auto"
    ssl: bool = False
    from_: str = Field(default="budgetguard@localhost", alias="from")
    to: tuple[str, ...] = Field(min_length=1)
    timeout: float = Field(default=20.0, gt=0)  # per SMTP step; the outbox allows 30 s a send
    ca_file: str | None = Field(default=None, description="CA bundle to trust (self-signed).")

    @field_validator("to", mode="before", json_schema_input_type=str | list[str])
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not _EMAIL.match(address):
                raise ValueError(f"'{address}' is not an email address")
        return value

    @model_validator(mode="after")
    def _tls(self) -> EmailSettings:
        if self.ssl and self.starttls is True:
            raise ValueError("choose one of starttls: true and ssl: true")
        if self.password is not None and not self.username:
            raise ValueError("a password needs a username")
        return self

    @property
    def tls_required(self) -> bool:
        """STARTTLS must happen: asked for, or ``auto`` with a login to protect."""
        return self.starttls is True or (self.starttls == "auto" and bool(self.username))

    @property
    def port(self) -> int:
        if self.smtp_port is not None:
            return self.smtp_port
        return 465 if self.ssl else 587


def subject(message: Message) -> str:
    """``[budgetguard] CRITICAL org-month: $5,210 of $5,000 (104%)``, on one line."""
    if isinstance(message, Digest):
        return plain_text(f"[budgetguard] {message.title}: {message.summary}")
    text = f"[budgetguard] {message.headline} {message.label}"
    ratio = message.ratio
    if message.kind in ("threshold", "forecast", "resolved") and ratio is not None:
        value = message.forecast if message.kind == "forecast" else message.spend
        what = "forecast " if message.kind == "forecast" else ""
        if message.kind == "forecast" and message.forecast is not None and message.limit:
            ratio = message.forecast / message.limit
        text += f": {what}{money(value, 0)} of {money(message.limit, 0)} ({ratio:.0%})"
    return plain_text(text)  # one line, no control character, whatever the names hold


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><td style="padding:4px 12px 4px 0;color:#475467">{escape_html(k)}</td>'
        f'<td style="padding:4px 0;font-weight:600">{escape_html(v)}</td></tr>'
        for k, v in rows
    )
    return f'<table style="border-collapse:collapse">{cells}</table>'


def _html(
    colour: str, headline: str, sections: list[str], link: str, runbook: str | None = None
) -> str:
    links = f'<a href="{html.escape(link)}">OpenAI usage dashboard</a>'
    if runbook:
        links = f'<a href="{html.escape(runbook)}">Runbook</a> · ' + links
    return (
        f'<div style="{_FONT}">'
        f'<p style="border-left:4px solid {colour};padding:8px 12px;margin:0 0 12px 0;'
        f'font-size:16px">{escape_html(headline)}</p>'
        + "".join(sections)
        + f'<p style="margin-top:16px">{links}</p></div>'
    )


def render_email(alert: Alert) -> tuple[str, str]:
    """(plain text, HTML) bodies of an alert."""
    rows = [
        *alert.fields,
        ("Kind", alert.kind),
        ("Fired at", alert.fired_at),
        ("Idempotency key", alert.key),
    ]
    text = "\n".join(
        [
            plain_text(alert.summary),
            "",
            *(f"{k}: {plain_text(v)}" for k, v in rows),
            "",
            f"OpenAI usage: {alert.link}",
            "",
        ]
    )
    colour = _COLOUR.get("ok" if alert.kind == "resolved" else alert.severity, _COLOUR["unknown"])
    return text, _html(colour, alert.summary, [_table(rows)], alert.link, alert.runbook_url)


def _charts_html(charts: list[tuple[str, str]]) -> str:
    """Each chart (Content-ID, caption) as an inline image with its words beside it."""
    rows = "".join(
        f'<tr><td style="padding:4px 12px 4px 0"><img src="cid:{html.escape(cid)}" '
        f'alt="{html.escape(caption)}" width="520" style="display:block;max-width:100%"></td>'
        f'<td style="padding:4px 0;color:#475467;vertical-align:middle">{html.escape(caption)}'
        "</td></tr>"
        for cid, caption in charts
    )
    return f'<table style="border-collapse:collapse">{rows}</table>' if rows else ""


def render_digest(digest: Digest, charts: list[tuple[str, str]] | None = None) -> tuple[str, str]:
    """(plain text, HTML) bodies of a digest; ``charts`` (Content-ID, caption) are shown
    inline beside their words (the text part has them as text rows)."""
    head = [
        ("Total", money(digest.total)),
        ("Previous period", money(digest.previous_total)),
        ("Change", signed_percent(digest.change)),
        ("Daily", digest.sparkline),
    ]
    tops = [
        (
            title,
            [(line.name, f"{money(line.spend)} ({signed_percent(line.change)})") for line in lines],
        )
        for title, lines in (
            ("Top projects", digest.top_projects),
            ("Top models", digest.top_models),
        )
    ]
    standing = [
        (
            b.label,
            f"{b.show(b.spend)} of {b.show(b.limit)} · {b.severity}"
            + (f" · forecast {b.show(b.forecast)}" if b.forecast is not None else ""),
        )
        for b in digest.budgets
    ]
    parts: list[tuple[str, list[tuple[str, str]]]] = [
        ("", head),
        *tops,
        ("Budgets", standing),
        ("Alerts", [("•", a) for a in digest.alerts]),
        ("Data notes", [("•", n) for n in digest.notes]),
    ]
    text_lines = [plain_text(digest.summary), "", *digest_chart_text(digest), ""]
    sections = [_charts_html(charts or [])]
    for title, rows in parts:
        if not rows:
            continue
        if title:
            text_lines.append(title)
            sections.append(f'<h3 style="margin:16px 0 4px 0">{html.escape(title)}</h3>')
        text_lines += [
            f"  {plain_text(k)}: {plain_text(v)}" if k != "•" else f"  - {plain_text(v)}"
            for k, v in rows
        ] + [""]
        sections.append(_table(rows))
    text_lines += [f"OpenAI usage: {digest.link}", ""]
    return "\n".join(text_lines), _html("#175cd3", digest.summary, sections, digest.link)


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """One AUTH attempt with the best plain mechanism offered (smtplib's ``login`` would try
    every mechanism in turn, and some servers hang up after the first refusal)."""
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    for mechanism in ("PLAIN", "LOGIN"):
        if mechanism in offered:
            smtp.user, smtp.password = username, password
            smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
            return
    smtp.login(username, password)


class EmailNotifier:
    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"EmailNotifier(smtp_host={self.settings.smtp_host!r}, password='***')"

    def send(self, message: Message) -> None:
        s = self.settings
        mail = EmailMessage()
        mail["Subject"] = subject(message)
        mail["From"] = s.from_
        mail["To"] = ", ".join(s.to)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain="budgetguard")
        mail["X-BudgetGuard-Key"] = message.key
        images: list[tuple[str, bytes]] = []
        if isinstance(message, Alert):
            text, body = render_email(message)
        else:
            charts = digest_charts(message)
            cids = [make_msgid(idstring=c.name, domain="budgetguard") for c in charts]
            images = [(cid, c.png()) for cid, c in zip(cids, charts, strict=True)]
            text, body = render_digest(
                message, [(cid[1:-1], c.caption) for cid, c in zip(cids, charts, strict=True)]
            )
        mail.set_content(text)
        mail.add_alternative(body, subtype="html")
        # the HTML alternative: it becomes multipart/related with its images
        html_part = next(p for p in mail.iter_parts() if p.get_content_type() == "text/html")
        assert isinstance(html_part, EmailMessage)
        for cid, png in images:
            html_part.add_related(
                png,
                "image",
                "png",
                cid=cid,
                disposition="inline",
                filename=f"{cid[1:].split('@')[0]}.png",
            )
        try:
            refused = self._deliver(mail)
        except DeliveryError:
            raise
        except Exception as exc:
            raise _classify(exc, f"{s.smtp_host}:{s.port}") from None
        if refused:
            log.warning("smtp refused %d of %d recipients", len(refused), len(s.to))

    def _deliver(self, mail: EmailMessage) -> dict[str, Any]:
        s = self.settings
        context = ssl.create_default_context(cafile=s.ca_file)
        if s.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, s.port, timeout=s.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.port, timeout=s.timeout)
        with smtp:
            smtp.ehlo()
            if not s.ssl and s.starttls is not False:
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                elif s.tls_required:
                    why = "starttls: true" if s.starttls is True else "a username is set"
                    raise DeliveryError(
                        f"smtp server {s.smtp_host}:{s.port} offers no STARTTLS, which is "
                        f"required ({why}): use ssl: true for implicit TLS, or a server that "
                        "offers STARTTLS (starttls: false only without a login)",
                        retryable=False,
                    )
            if s.username and s.password is not None:
                secret_problem("smtp password", s.password.get_secret_value(), spaces=True)
                if not smtp.has_extn("auth"):
                    raise DeliveryError(
                        f"smtp server {s.smtp_host}:{s.port} offers no AUTH: remove username "
                        "and password, or use the server's submission port",
                        retryable=False,
                    )
                _login(smtp, s.username, s.password.get_secret_value())
            return dict(smtp.send_message(mail))


def _classify(exc: Exception, where: str) -> DeliveryError:
    """The one SMTP classifier: permanent (and what to change) or temporary."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"smtp login refused ({exc.smtp_code}) by {where}: check username and password",
            retryable=False,
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _ in exc.recipients.values()})
        return DeliveryError(
            f"smtp {where} refused every recipient ({', '.join(codes)}): check 'to'",
            retryable=all(c.startswith("4") for c in codes),  # only "try later" (greylisting)
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return DeliveryError(
            f"smtp {where} refused the sender ({exc.smtp_code}): check 'from'",
            retryable=exc.smtp_code < 500,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(
            f"smtp {where} answered {exc.smtp_code}", retryable=exc.smtp_code < 500
        )
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(
            f"smtp TLS with {where} failed ({exc.reason}): check ca_file, ssl and the port",
            retryable=False,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"smtp {where} does not support a needed command", retryable=False)
    if isinstance(exc, TimeoutError):
        return DeliveryError(f"smtp {where} timed out", retryable=True)
    if isinstance(exc, OSError | smtplib.SMTPException):
        return DeliveryError(f"smtp {where} unreachable ({type(exc).__name__})", retryable=True)
    return DeliveryError(f"smtp to {where} failed ({type(exc).__name__})", retryable=True)


@hookimpl
def budgetguard_notifier_types() -> list[NotifierType]:
    return [NotifierType("email", EmailSettings, EmailNotifier, "SMTP, multipart text + HTML")]
