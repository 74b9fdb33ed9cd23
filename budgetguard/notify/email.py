"""Email over SMTP (STARTTLS, implicit TLS, AUTH): multipart plain text and HTML.

Subject: ``[budgetguard] CRITICAL org-month: $5,210 of $5,000 (104%)``. A refused login, a
refused recipient or a 5xx answer is permanent; a 4xx answer, a timeout or a connection
failure is retried by the outbox.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from budgetguard.notify.errors import DeliveryError
from budgetguard.rules.notifiers import EmailSettings

__all__ = ["EmailSender", "render_email", "subject"]

_COLOUR = {"critical": "#d92d20", "warning": "#b54708", "ok": "#067647", "unknown": "#475467"}


def _whole(value: Any) -> str:
    return "—" if value is None else f"${value:,.0f}"


def _money(value: Any) -> str:
    return "—" if value is None else f"${value:,.2f}"


def _label(payload: Mapping[str, Any]) -> str:
    group = ", ".join(f"{k}={v}" for k, v in dict(payload.get("group") or {}).items())
    return str(payload.get("budget", "")) + (f" [{group}]" if group else "")


def subject(payload: Mapping[str, Any]) -> str:
    severity = str(payload.get("severity") or "")
    kind = payload.get("kind")
    spend, limit = payload.get("spend"), payload.get("limit")
    if kind == "resolved":
        head = "RESOLVED"
    elif kind == "no_data":
        head = "NO DATA"
    else:
        head = severity.upper()
    text = f"[budgetguard] {head} {_label(payload)}"
    if kind in ("threshold", "forecast", "resolved") and isinstance(spend, int | float) and limit:
        text += f": {_whole(spend)} of {_whole(limit)} ({spend / limit:.0%})"
    return " ".join(text.split())  # one line, whatever the names hold


def render_email(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(plain text, HTML) bodies."""
    spend, limit = payload.get("spend"), payload.get("limit")
    ratio = f"{spend / limit:.0%}" if isinstance(spend, int | float) and limit else "—"
    rows = [
        ("Budget", _label(payload)),
        ("Kind", str(payload.get("kind", ""))),
        ("Severity", str(payload.get("severity", ""))),
        ("Spend", _money(spend)),
        ("Limit", _money(limit)),
        ("Of limit", ratio),
        ("Fired at", str(payload.get("fired_at", ""))),
        ("Idempotency key", str(payload.get("key", ""))),
    ]
    message = str(payload.get("message") or "")
    text = "\n".join(
        [
            message,
            "",
            *(f"{k}: {v}" for k, v in rows),
            "",
            "OpenAI usage: https://platform.openai.com/usage",
            "",
        ]
    )
    colour = _COLOUR.get(str(payload.get("severity")), _COLOUR["unknown"])
    cells = "".join(
        f'<tr><td style="padding:4px 12px 4px 0;color:#475467">{html.escape(k)}</td>'
        f'<td style="padding:4px 0;font-weight:600">{html.escape(v)}</td></tr>'
        for k, v in rows
    )
    body = (
        '<div style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;'
        'font-size:14px;color:#101828">'
        f'<p style="border-left:4px solid {colour};padding:8px 12px;margin:0 0 12px 0;'
        f'font-size:16px">{html.escape(message)}</p>'
        f'<table style="border-collapse:collapse">{cells}</table>'
        '<p style="margin-top:16px"><a href="https://platform.openai.com/usage">OpenAI usage '
        "dashboard</a></p></div>"
    )
    return text, body


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


class EmailSender:
    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"EmailSender(smtp_host={self.settings.smtp_host!r}, password='***')"

    def send(self, payload: Mapping[str, Any]) -> None:
        s = self.settings
        message = EmailMessage()
        message["Subject"] = subject(payload)
        message["From"] = s.from_
        message["To"] = ", ".join(s.to)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="budgetguard")
        message["X-BudgetGuard-Key"] = str(payload.get("key", ""))
        text, body = render_email(payload)
        message.set_content(text)
        message.add_alternative(body, subtype="html")
        context = ssl.create_default_context(cafile=s.ca_file)
        try:
            if s.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host, s.port, timeout=s.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(s.smtp_host, s.port, timeout=s.timeout)
            with smtp:
                smtp.ehlo()
                if s.starttls and not s.ssl:
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if s.username and s.password is not None:
                    _login(smtp, s.username, s.password.get_secret_value())
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"smtp login refused ({exc.smtp_code})", retryable=False) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("smtp refused every recipient", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"smtp answered {exc.smtp_code}", retryable=exc.smtp_code < 500
            ) from None
        except ssl.SSLError as exc:
            raise DeliveryError(f"smtp TLS failed ({exc.reason})", retryable=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"smtp unreachable ({type(exc).__name__})", retryable=True
            ) from None
