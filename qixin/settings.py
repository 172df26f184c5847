"""One Settings object for the whole platform, declared once (pydantic-settings).

Rules:
- Each setting is declared exactly once below: its type, its default, its meaning (the ``description``)
  and its environment variable (``QIXIN_`` + the field name in capitals; the SMPP endpoint's fields are
  ``QIXIN_SMPP_*``). docs/settings.md is generated from these declarations and a test keeps it true.
- Every value has a sensible default for the embedded mode (SQLite under ``data_dir``, the built-in
  carrier simulators as the channels, in-memory rate storage).
- ``QIXIN_DATABASE_URL`` switches to PostgreSQL (``postgresql+psycopg://…``); ``QIXIN_REDIS_URL`` turns on
  Redis for state shared between processes (nonces, frequency limits).
- Lists come from the environment comma-separated (``QIXIN_HOLIDAYS=2027-01-01,2027-02-17``); booleans
  accept on/off, true/false, 1/0.
- Money is in integer 厘 (0.001 yuan); durations in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[tuple[str, ...], NoDecode]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(x.strip() for x in value.split(",") if x.strip())
    return value


class ChannelSettings(BaseSettings):
    """The SMPP endpoint the settings point at (``QIXIN_SMPP_*``).

    Port 0 (the default) means the embedded simulators; any other port makes the platform keep one
    SMPP channel row named ``name`` pointed at that endpoint. All other channels are data
    (``qixin channels``, ``/admin/channels``)."""

    model_config = SettingsConfigDict(env_prefix="QIXIN_SMPP_", frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="External SMSC host (used only when the port is not 0)")
    port: int = Field(0, description="External SMSC port; 0 starts the built-in carrier simulators instead")
    system_id: str = Field("qixin", description="system_id to bind with (also the embedded SMPP simulator's login)")
    password: str = Field("qixin", description="SMPP password (write-only: never shown by the platform)")
    window: int = Field(256, ge=1, le=65535, description="Outstanding submit_sm per session (sliding window)")
    name: str = Field("smpp-sim", description="Name of the channel row kept for this endpoint")


class ComplianceSettings(BaseSettings):
    """Compliance defaults (docs/compliance.md); per-account overrides live in account_policies."""

    model_config = SettingsConfigDict(env_prefix="QIXIN_", frozen=True, extra="forbid")

    sending_windows: bool = Field(
        True, description="Defer notification/marketing outside 08:00–22:00 (marketing 09:00–20:00) Beijing time"
    )
    max_number_run: int = Field(
        20, ge=0, description="Longest run of consecutive numbers a batch may hold; 0 turns the check off"
    )
    rate_limits: bool = Field(True, description="Per-recipient frequency limits (memory, or Redis with redis_url)")
    verification_limit: str = Field(
        "1/minute;5/hour;10/day", description="Verification codes per number per account+signature"
    )
    any_sender_limit: str = Field("40/day", description="Messages per number, whoever sends")
    template_limit: str = Field(
        "50/day", description="Notification/marketing per number per template (free text: per account)"
    )
    same_content_limit: str = Field("1/day", description="Identical marketing content per number")
    optout_words: CommaList = Field(("TD", "T", "N", "R", "退订"), description="MO replies that opt a number out")
    freeze_after: int = Field(
        10, ge=0, description="Content violations within freeze_period that freeze the account; 0 = never"
    )
    freeze_period: int = Field(86_400, ge=1, description="Window (seconds) in which violations are counted")
    freeze_codes: CommaList = Field(
        ("CONTENT_FORBIDDEN", "LINK_FORBIDDEN"), description="Violation codes that count toward the auto-freeze"
    )
    limits_prefix: str = Field("qixin-limits", description="Redis key prefix of the frequency counters")
    classifier: bool = Field(True, description="Content classifier in screening: refuse, hold for manual review, pass")
    classifier_thresholds: str = Field(
        "", description="JSON file of the classifier's hold/refuse thresholds per category (empty: the shipped file)"
    )
    review_hold_ttl: int = Field(
        86_400, ge=1, description="Seconds a batch held for manual review waits before it expires (refunded)"
    )
    review_expire_interval: float = Field(30.0, gt=0, description="Seconds between sweeps for expired review holds")

    _split_lists = field_validator("optout_words", "freeze_codes", mode="before")(_split)


class NumberCheckSettings(BaseSettings):
    """Number status check (空号检测, docs/numbers.md): evidence rules and the upstream provider
    (``QIXIN_NUMCHECK_*``)."""

    model_config = SettingsConfigDict(env_prefix="QIXIN_NUMCHECK_", frozen=True, extra="forbid")

    provider: str = Field(
        "simulator",
        pattern="^(simulator|http|none)$",
        description="Upstream provider: simulator (built in), http (configured below) or none",
    )
    fresh_days: int = Field(30, ge=1, description="A delivery this recent makes a number real with confidence 0.95")
    silent_days: int = Field(90, ge=1, description="No delivery for longer than this makes a number silent (沉默号)")
    max_inline: int = Field(1_000, ge=1, description="Numbers per POST /v1/numbers/check")
    skip_days: int = Field(
        30, ge=1, description="A send with skip_empty / skip_silent skips numbers so classed by a check this recent"
    )
    probe_interval: float = Field(
        60.0, ge=0, description="Seconds between probes of the upstream provider (alert numcheck_provider); 0: off"
    )
    probe_timeout: float = Field(10.0, gt=0, description="A probe not answered in this many seconds failed")
    http_url: str = Field("", description="HTTP provider: URL the numbers are POSTed to")
    http_numbers_field: str = Field("numbers", description="HTTP provider: request field holding the number list")
    http_extra_body: dict[str, Any] = Field({}, description="HTTP provider: fixed fields added to every request (JSON)")
    http_results_field: str = Field("results", description="HTTP provider: answer field holding the result list")
    http_number_field: str = Field("number", description="HTTP provider: result field holding the number")
    http_status_field: str = Field("status", description="HTTP provider: result field holding the provider's status")
    http_status_map: dict[str, str] = Field(
        {"real": "real", "silent": "silent", "empty": "empty", "risk": "risk"},
        description="HTTP provider: provider status value -> class (JSON); unmapped values are unknown (库无)",
    )
    http_token: str = Field("", description="HTTP provider: bearer token sent with each request (write-only)")
    http_confidence: float = Field(
        0.85, ge=0, description="HTTP provider: confidence given to its answers (at most 0.99)"
    )
    http_timeout: float = Field(2.0, gt=0, description="HTTP provider: seconds before a request counts as timed out")
    http_batch: int = Field(100, ge=1, description="HTTP provider: numbers per request")
    breaker_failures: int = Field(5, ge=1, description="Consecutive upstream failures that open its circuit")
    breaker_reset: float = Field(30.0, gt=0, description="Seconds the circuit stays open before one trial request")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QIXIN_", frozen=True, extra="forbid")

    data_dir: Path = Field(Path("data"), description="Directory for the SQLite database and uploaded documents")
    database_url: str = Field("", description="postgresql+psycopg://… for PostgreSQL; empty: SQLite in data_dir")
    redis_url: str = Field("", description="redis://… to share nonces and frequency limits between processes")
    flow_prefix: str = Field("qixin-flow", description="Redis key prefix of the per-account TPS and daily-cap counters")
    host: str = Field("127.0.0.1", description="HTTP listen address (qixin run / qixin api)")
    port: int = Field(8000, ge=0, le=65535, description="HTTP listen port")
    node_id: int | None = Field(
        None, ge=0, le=1023, description="Id generator node (0–1023); distinct per process. Empty: random"
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus endpoint of a process without HTTP (qixin dispatcher); 0 = off"
    )
    # API security
    secret_key: str = Field(
        "",
        description="Base64 key (32 bytes) sealing API secrets at rest; empty: secret.key beside the SQLite file"
        " (PostgreSQL: in data_dir), made once. Every process of one platform needs the same key (write-only)",
    )
    signature_skew: int = Field(300, ge=1, description="Seconds a signed request's timestamp may differ")
    trusted_proxies: CommaList = Field(
        (), description="Reverse proxies (IPs or CIDRs) whose X-Forwarded-For is believed; empty: the TCP peer"
    )
    # text
    max_parts: int = Field(10, ge=1, le=255, description="Maximum length of one message, in billed parts")
    max_numbers_per_request: int = Field(100_000, ge=1, description="Numbers accepted in one send request")
    # file jobs (services/filejobs.py)
    filejob_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1, description="Largest file (bytes) a file job accepts (upload or qixin send --file)"
    )
    filejob_max_numbers: int = Field(1_000_000, ge=1, description="Numbers one file job may hold")
    filejob_chunk_size: int = Field(
        100_000,
        ge=1,
        description="Numbers per chunk of a file job (one accept request); at most max_numbers_per_request",
    )
    filejob_poll_interval: float = Field(1.0, gt=0, description="Seconds between looks for file jobs to run or resume")
    # dispatch
    lease_seconds: float = Field(30.0, gt=0, description="A claimed queue row returns to the queue after this")
    claim_batch: int = Field(1000, ge=1, description="Queue rows claimed per round")
    inflight_cap: int = Field(
        4000, ge=1, description="Messages handed to connectors whose outcome is not yet durably stored"
    )
    flush_interval: float = Field(0.02, gt=0, description="Seconds between flushes of submit results and receipts")
    receipt_timeout: float = Field(
        72 * 3600.0, gt=0, description="Seconds after submission until a message whose receipt never came expires"
    )
    # webhooks
    webhook_batch: int = Field(100, ge=1, description="Events per webhook POST")
    webhook_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a customer's webhook endpoint")
    webhook_backoff: Annotated[tuple[int, ...], NoDecode] = Field(
        (5, 30, 120, 600, 1800, 3600, 7200, 14400), description="Retry delays (seconds) of a failed webhook"
    )
    # billing (services/billing.py, statements.py, notify.py)
    billing_interval: float = Field(
        30.0, gt=0, description="Seconds between housekeeping rounds (expiry, statements, notices)"
    )
    price_notice_days: int = Field(
        0, ge=0, description="A price plan must take effect at least this many days after it is made"
    )
    holidays: CommaList = Field((), description="YYYY-MM-DD public holidays (not working days for disputes)")
    auto_statements: bool = Field(True, description="Issue last month's statements on the 1st (Asia/Shanghai)")
    smtp_host: str = Field("", description="SMTP server for notices and statements; empty: no email is sent")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port")
    smtp_user: str = Field("", description="SMTP login")
    smtp_password: str = Field("", description="SMTP password (write-only)")
    smtp_from: str = Field("billing@qixin.local", description="Sender address of notices and statements")
    smtp_starttls: bool = Field(False, description="Use STARTTLS with the SMTP server")
    # staff alerts (services/alerts.py, docs/alerts.md)
    alerts_interval: float = Field(15.0, ge=0, description="Seconds between alert evaluations; 0 = none here")
    alert_emails: CommaList = Field((), description="Staff addresses told of alerts (needs QIXIN_SMTP_HOST)")
    alert_webhook_url: str = Field("", description="Staff webhook receiving alerts as JSON POSTs; empty: none")
    alert_sms_numbers: CommaList = Field((), description="On-call mobile numbers told of alerts by SMS")
    alert_sms_app_key: str = Field("", description="App key of the platform's own account that sends the alert SMS")
    alert_sms_signature: str = Field("企信", description="Approved signature of that account used for alert SMS")
    # the web console (docs/console.md)
    console_sms_account: int = Field(
        0, ge=0, description="Account that sends console login codes; 0: an account named 企信平台 made on first use"
    )
    console_sms_signature: str = Field("企信", description="Signature of the console login-code SMS")
    console_max_failures: int = Field(5, ge=1, description="Failed console logins in a row that lock the user")
    console_lock_minutes: int = Field(30, ge=1, description="Minutes a locked console user waits (or staff unlock)")
    console_session_hours: float = Field(8.0, gt=0, description="Hours a console login lasts")
    console_code_minutes: int = Field(5, ge=1, description="Minutes an SMS login code stays valid")
    # customer ports (direct connections, docs/protocols.md "Customer ports")
    smpp_server_port: int = Field(
        2775, ge=0, le=65535, description="Customer SMPP 3.4 port (qixin run / qixin api); 0 turns it off"
    )
    cmpp_server_port: int = Field(
        7890, ge=0, le=65535, description="Customer CMPP 2.0/3.0 port (qixin run / qixin api); 0 turns it off"
    )
    sgip_server_port: int = Field(
        8801, ge=0, le=65535, description="Customer SGIP 1.2 port (qixin run / qixin api); 0 turns it off"
    )
    smgp_server_port: int = Field(
        8890, ge=0, le=65535, description="Customer SMGP 3.0 port (qixin run / qixin api); 0 turns it off"
    )
    ports_host: str = Field("", description="Listen address of the customer ports; empty: the HTTP host")
    port_window: int = Field(256, ge=1, le=65535, description="Outstanding submits and deliveries per port session")
    port_heartbeat: float = Field(
        30.0, gt=0, description="Seconds of silence before a port sends enquire_link / ACTIVE_TEST (3 unanswered close)"
    )
    port_part_timeout: float = Field(
        60.0, gt=0, description="Seconds a long message's segments may take to arrive before it fails unsent"
    )
    port_max_buffered: int = Field(
        4 << 20, ge=1, description="Bytes of unread answers a port session may hold before it is dropped"
    )
    port_max_sessions: int = Field(2000, ge=1, description="Open connections per customer port")
    # retention (services/retention.py, docs/retention.md)
    retention_days: int = Field(
        183, ge=1, description="Days message details (content, numbers, receipts) are kept before the purge"
    )
    retention_hour: int = Field(4, ge=0, le=23, description="Hour (Asia/Shanghai) of the daily retention purge")
    retention_chunk_ms: float = Field(
        50.0, gt=0, description="Target duration (ms) of one purge transaction; chunks are sized to it"
    )
    gc_freeze: bool = Field(
        True, description="After start-up, move what start-up built out of the garbage collector's sight (gc.freeze)"
    )
    export_keep_days: int = Field(
        7, ge=1, description="Days a finished export job and its file are kept before the retention purge deletes them"
    )
    # the embedded mode's simulators
    sim_receipt_delay: Annotated[tuple[float, float], NoDecode] = Field(
        (0.05, 0.5), description="Receipt delay range (seconds, min,max) of the built-in simulators"
    )
    sim_handset_echo: bool = Field(
        True, description="qixin run prints what the simulated handsets receive (≤ 5 a second; e.g. login codes)"
    )
    simulators: CommaList = Field(
        ("cmpp3", "sgip", "smgp", "smpp"), description="Built-in carrier simulators the embedded mode starts"
    )
    # receipt stats that report a number ported to another carrier (携号转网); see services/portability.py
    ported_stats: CommaList = Field(("PORTED", "PT:"), description="Receipt stats meaning the number was ported")
    # periodic 闪测 of every channel (services/flashtests.py FlashProbe, docs/numbers.md)
    flash_probe_interval: float = Field(
        1800.0, ge=0, description="Seconds between periodic 闪测 rounds over every channel (alert flash_probe); 0: off"
    )
    flash_probe_timeout: int = Field(
        300, ge=1, le=86_400, description="Seconds (5 at least) a probe waits for its receipt, then no receipt"
    )
    flash_probe_content: str = Field("企信通道巡检短信，无需回复。", description="The fixed text of the periodic probe")
    flash_probe_signature: str = Field("企信", description="Signature of the periodic probe (approved on its account)")
    flash_probe_account: int = Field(
        0, ge=0, description="Account sending (and paying for) the probes; 0: one named 企信通道巡检, made on first use"
    )
    channel: ChannelSettings = Field(default_factory=lambda: ChannelSettings(), description="QIXIN_SMPP_*: see below")
    compliance: ComplianceSettings = Field(default_factory=lambda: ComplianceSettings(), description="see below")
    numcheck: NumberCheckSettings = Field(default_factory=lambda: NumberCheckSettings(), description="see below")

    _split_lists = field_validator(
        "holidays", "simulators", "trusted_proxies", "alert_emails", "alert_sms_numbers", mode="before"
    )(_split)

    @field_validator("ported_stats", mode="before")
    @classmethod
    def _ported(cls, value: Any) -> Any:
        return tuple(x.upper() for x in _split(value))

    @field_validator("webhook_backoff", mode="before")
    @classmethod
    def _backoff(cls, value: Any) -> Any:
        return tuple(int(x) for x in _split(value)) if isinstance(value, str) else value

    @field_validator("sim_receipt_delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> Any:
        return tuple(float(x) for x in _split(value)) if isinstance(value, str) else value

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qixin.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    def customer_port(self, protocol: str) -> int:
        """The customer port of a direct-connection protocol (0: off or unknown)."""
        ports = {
            "smpp": self.smpp_server_port, "cmpp": self.cmpp_server_port, "sgip": self.sgip_server_port,
            "smgp": self.smgp_server_port,
        }  # fmt: skip
        return ports.get(protocol, 0)

    def with_(self, **changes: object) -> Settings:
        return self.model_copy(update=changes)


def load_settings(data_dir: str | Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment (QIXIN_*), then explicit overrides (CLI flags); None means not given."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        clean["data_dir"] = Path(data_dir)
    return Settings(**clean)  # type: ignore[arg-type]
