"""What the email channel and its connection pool both need: the SMTP server, security mode,
credentials and sender, read once from Settings."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

from broadcast.errors import ConfigurationError
from broadcast.settings import Settings


@dataclass(frozen=True)
class SmtpConfig:
    """SMTP server, security mode, credentials and sender; built once from Settings."""

    host: str
    port: int
    sender: str
    tls: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    pool_size: int = 4
    tls_context: ssl.SSLContext | None = None  # e.g. a test CA; None means system defaults

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        if not settings.email_configured:
            raise ConfigurationError("email needs BROADCAST_SMTP_HOST and BROADCAST_EMAIL_FROM")
        assert settings.smtp_host and settings.email_from
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_sender(settings.email_from),
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=password,
        )
