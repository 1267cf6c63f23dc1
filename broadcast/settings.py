"""Settings from the environment (and an optional .env file), all prefixed BROADCAST_."""

from __future__ import annotations

from email.utils import formataddr, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broadcast import keys
from broadcast.errors import ConfigurationError

# Derives the suppression list's key from the link key (docs/security.md): its own key, so the
# HMAC of an address is never a value the link key also signs.
SUPPRESSION_PURPOSE = "broadcast suppression list v1"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BROADCAST_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///broadcast.db"
    redis_url: str | None = None
    # Signs registrants' links. No default: unset, an SQLite installation generates one and
    # keeps it next to the database file (broadcast/keys.py); elsewhere the web app refuses.
    secret_key: SecretStr | None = None
    public_url: str = "http://localhost:8000"
    force_name: str = "Example Constabulary"
    # Which force a command works as (`--force` overrides it); unset: the only force there is.
    force: str | None = None
    default_region: str = "GB"

    # Providers: a channel counts as configured when its provider settings are present.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_url: str | None = None
    sms_from: str | None = None
    voice_from: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    email_from: str | None = None
    outbox_dir: Path = Path("outbox")
    voice_machine_detection: bool = False
    # Alert templates: the repository's templates/ folder unless a force keeps its own.
    templates_dir: Path | None = None

    # Capacity per channel, "COUNT/DURATION" (500/1h, 10/1s); unset means unlimited.
    voice_rate: str | None = "500/1h"
    sms_rate: str | None = None
    email_rate: str | None = None
    voice_concurrency: int | None = None
    # Seconds each grant holds its slot beyond the window (capped at 2.5% of the window), so
    # that varying delays between grant and provider never put COUNT+1 in a provider's window.
    capacity_guard: float = 0.25
    sms_max_segments: int = 6

    # Force-defined vocabularies: comma-separated. Named areas are optional (postcode districts and
    # sectors are always accepted); an empty topic list accepts any slug.
    topics: str = (
        "burglary,fraud,e-crime,missing-person,anti-social-behaviour,road-safety,"
        "vehicle-crime,community,general"
    )
    named_areas: str = ""
    # Languages the force's pages and alerts offer, comma-separated ("cy,en" for a Welsh force).
    languages: str = "en"
    # Days a force keeps an erased registrant's tombstone and its alerts' delivery rows (policy;
    # shown by `forces show`). None: kept.
    retention_days: int | None = None
    # Keys the suppression list's hashes (through a derived key); unset: secret_key does. Set it
    # to the current secret key's value before rotating secret_key, so the list keeps matching.
    suppression_key: SecretStr | None = None
    consent_wording_version: str = "2026-11"

    # Rows written per import transaction. Larger batches mean fewer commits, and SQLite rewrites
    # every index page a commit touched (20,000 against 5,000: about 1 s less per 100,000 rows).
    import_batch_size: int = 20000

    # --- Delivery engine (docs/delivery.md) ---
    # Deliveries per queue message; a message names a range of one alert's deliveries.
    delivery_chunk_size: int = 500
    # Chunks of one alert's channel on the queue at once; the rest follow as chunks finish, so
    # alerts (and forces) take turns instead of queuing behind a whole backlog. 0 queues every
    # chunk at once (no fairness). See docs/tenancy.md.
    dispatch_window: int = 4
    # Attempts per delivery before a transient failure ends it `failed` (expiry ends it sooner).
    delivery_max_attempts: int = 8
    # First retry after about this many seconds, doubling per attempt (with jitter), at most 10 min.
    delivery_retry_base: float = 5.0
    # Longest a worker thread sleeps for capacity before putting the chunk back with a delay.
    delivery_capacity_wait: float = 5.0
    # A voice line is held until the call's status callback, or at most this long.
    voice_lease_seconds: float = 900.0
    # A delivery left `sending` this long is settled by the sweep even when no heartbeat says
    # its worker stopped (a claim from before a Redis flush, an unknown worker).
    delivery_stale_after: float = 300.0
    # Each worker process beats this often; one silent for `worker_lapse_after` seconds is dead
    # and its claims are settled at once (docs/delivery.md, "Recovery").
    worker_heartbeat_interval: float = 2.0
    worker_lapse_after: float = 6.0
    # A request Twilio may have taken is looked up no sooner than this after its claim (the
    # request timeout and then some): not found by then, it is sent again.
    provider_accept_window: float = 15.0
    # Email left in doubt (SMTP cannot be asked): `resend` with the same Message-ID, which mail
    # clients collapse, or `hold` it for an operator (`failures requeue --include-in-doubt`).
    in_doubt_email: Literal["resend", "hold"] = "resend"
    # How often the workers' sweep runs, and how long an alert lives by default.
    sweep_interval: float = 5.0
    alert_default_expiry: str = "6h"
    # `alert send` asks before sending the same template, variables and targeting as an alert
    # created this recently (a re-run after an error); "0m" turns the check off.
    duplicate_send_window: str = "10m"

    # --- The registrants' web app (broadcast/web, docs/web.md) ---------------------------------
    # Postcode areas the force covers (the leading letters of the outward code: "SW" of "SW1A
    # 1AA"), comma-separated; empty accepts any UK postcode.
    area_postcodes: str = ""
    # Where someone outside the force's areas is sent instead.
    other_forces_url: str = "https://www.police.uk/pu/find-your-local-police-force/"
    force_logo_url: str | None = None
    brand_colour: str = "#1d70b8"
    help_text: str | None = None  # the HELP/INFO SMS reply; None: a default naming the force
    # Pending (unconfirmed) channels expire after this long; codes and links stop working.
    pending_expiry_hours: int = 72
    confirmation_max_attempts: int = 5
    # Web rate limits, "COUNT/DURATION": per client IP and per contact point (or sign-up).
    web_ip_rate: str = "20/10m"
    web_contact_rate: str = "3/1h"
    web_code_rate: str = "10/15m"
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto the app trusts: comma-separated
    # IPs or networks ("10.0.0.5,10.1.0.0/16"), "*" for any. Empty (the default): no forwarded
    # header is trusted and the client address is the TCP peer's, so a forged X-Forwarded-For
    # cannot dodge the per-IP limit. Set it to the proxy's address when behind one.
    forwarded_allow_ips: str = ""
    # Confirmation SMS (and calls) per hour, for all sign-ups together and per number prefix
    # (the first `confirmation_prefix_digits` digits of the E.164 number after "+"): the caps
    # against SMS pumping. Reaching one alarms on /ops and /metrics. docs/security.md
    confirmation_sms_rate: str = "200/1h"
    confirmation_sms_prefix_rate: str = "20/1h"
    confirmation_prefix_digits: int = 6
    # Sign-up posts (all clients together) after which each sign-up must carry a solved
    # challenge (a first-party proof of work, or for browsers without JavaScript a form that
    # was loaded at least `web_challenge_wait` seconds before it was sent).
    web_challenge_after: str = "30/10m"
    web_challenge_bits: int = 16
    web_challenge_wait: float = 20.0

    @property
    def area_postcode_set(self) -> frozenset[str]:
        return frozenset(a.strip().upper() for a in self.area_postcodes.split(",") if a.strip())

    @property
    def sms_help_text(self) -> str:
        return self.help_text or (
            f"{self.force_name} community alerts. Manage or stop: {self.public_url.rstrip('/')}"
            "/subscribe. Reply STOP to stop texts. This number is not monitored: call 101, or "
            "999 in an emergency."
        )

    # --- end of web app settings -----------------------------------------------------------------

    # --- Response headers (broadcast/web/security.py; docs/security.md) ------------------------
    # Strict-Transport-Security on every response; unset: on when public_url is https.
    hsts: bool | None = None
    hsts_max_age: int = 31_536_000  # one year
    # Serve the API description at /openapi.json; off, a public service does not publish it.
    openapi: bool = False
    # --- end of response header settings -------------------------------------------------------

    # --- Operators (broadcast/ops/, /ops, /metrics; docs/operations.md) ---------------------------
    # Opens /ops (and /metrics): "Authorization: Bearer TOKEN", or HTTP basic auth with the token
    # as the password. Unset: /ops and /metrics answer 404, as if they did not exist.
    ops_token: SecretStr | None = None
    # Serve /metrics without the token (a Prometheus on a private network); /ops stays closed.
    metrics_public: bool = False
    # A worker not seen for this many seconds is gone; the worker registry beats every third of it.
    ops_heartbeat_timeout: float = 30.0
    # Port of Dramatiq's own Prometheus exposition on each worker host; unset: off.
    worker_metrics_port: int | None = None
    # --- end of operator settings --------------------------------------------------------------

    # --- Alert lifecycle (broadcast/alerts/; docs/lifecycle.md) -----------------------------------
    # Two-person rule: `alert send` only creates the alert; another operator must approve it.
    require_approval: bool = False
    # Routine voice calls are held during these local hours ("off" to never hold).
    quiet_hours: str = "21:00-08:00"
    # Local time for --at, quiet hours and what operators see.
    timezone: str = "Europe/London"
    # How often the scheduler releases due alerts and checks escalations (seconds).
    scheduler_interval: float = 15.0
    # --escalate without --escalate-after: move on if not delivered within this long.
    escalate_after: str = "15m"
    # --- end of alert lifecycle settings -------------------------------------------------------

    # Who runs CLI commands (alerts, consent ledger, audit log) when --operator is not given;
    # unset: the OS user.
    operator: str | None = None

    # How the suppression hashes are keyed ("derived" or "link-key"), read from the database by
    # suppression.bind_keying; "derived" until then.
    _suppression_scheme: str = PrivateAttr(default="derived")
    _link_key: str | None = PrivateAttr(default=None)  # read (or generated) once

    @field_validator("secret_key", mode="before")
    @classmethod
    def _strip_key(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            # "BROADCAST_SECRET_KEY=" (a template's empty line) is unset, not a key.
            return value.strip() or None
        return value

    @field_validator("secret_key")
    @classmethod
    def _refuse_weak_key(cls, value: SecretStr | None) -> SecretStr | None:
        # Whatever BROADCAST_ENV says: a weak key set by mistake must never sign a link.
        if value is not None:
            problem = keys.key_problem(value.get_secret_value())
            if problem:
                raise ValueError(keys.refusal("BROADCAST_SECRET_KEY", problem))
        return value

    @property
    def key_source(self) -> keys.KeySource:
        return keys.key_source(self)

    def link_key(self) -> str:
        """The link-signing key (generated and kept for an SQLite installation without one)."""
        if self._link_key is None:
            self._link_key = keys.secret_key(self)
        return self._link_key

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def sms_configured(self) -> bool:
        return self.twilio_configured and bool(self.sms_from)

    @property
    def voice_configured(self) -> bool:
        return self.twilio_configured and bool(self.voice_from)

    @property
    def email_configured(self) -> bool:
        return bool(self.smtp_host and self.email_from)

    def email_sender(self, default: str) -> str:
        """The From of every email: BROADCAST_EMAIL_FROM as given when it has a display name,
        else the force's name before the address ("Metropolitan Police <alerts@...>")."""
        sender = self.email_from or default
        name, address = parseaddr(sender)
        return sender if name or not address else formataddr((self.force_name, address))

    @property
    def topic_set(self) -> frozenset[str]:
        return frozenset(t.strip().lower() for t in self.topics.split(",") if t.strip())

    @property
    def named_area_set(self) -> frozenset[str]:
        return frozenset(a.strip().lower() for a in self.named_areas.split(",") if a.strip())

    @property
    def suppression_secret(self) -> bytes:
        """The suppression list's key, from BROADCAST_SUPPRESSION_KEY or else the link key: a key
        derived from it, or the value itself where hashes were made before migration 0010."""
        given = self.suppression_key.get_secret_value() if self.suppression_key else None
        root = (given or self.link_key()).encode()
        if self._suppression_scheme == "link-key":
            return root
        return keys.derive(root, SUPPRESSION_PURPOSE)

    def masked(self) -> dict[str, object]:
        """The effective settings with every secret replaced by asterisks, for display."""
        shown: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if name == "secret_key":
                value = self.key_source.describe()
            elif isinstance(getattr(self, name), SecretStr):
                value = "********" if getattr(self, name).get_secret_value() else ""
            elif name.endswith("_url") and isinstance(value, str):
                value = _mask_url_password(value)
            shown[name] = str(value) if isinstance(value, Path) else value
        return shown


def _mask_url_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return url
    if parsed.password:
        return parsed.render_as_string(hide_password=True)
    return url


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once; tests call get_settings.cache_clear()."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(settings_error(exc)) from None


def settings_error(exc: ValidationError) -> str:
    """One line naming the setting that failed (the first, when several did), not pydantic's."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    name = "BROADCAST_" + "_".join(str(part) for part in first["loc"]).upper()
    message = str(first["msg"]).removeprefix("Value error, ")
    line = message if message.startswith(name) else f"{name}: {message}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more setting(s))"
    return line
