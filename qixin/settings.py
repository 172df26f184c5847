"""One Settings object for the whole platform, read from the environment (QIXIN_*) and CLI flags.

Rules:
- Every value has a sensible default for the embedded mode (SQLite under ``data_dir``, the built-in
  SMPP simulator as the channel, in-memory nonce and rate storage).
- ``QIXIN_DATABASE_URL`` switches to PostgreSQL (``postgresql+psycopg://…``); ``QIXIN_REDIS_URL`` turns on
  Redis for state shared between processes (nonces).
- Money is in integer 厘 (0.001 yuan); durations in seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"QIXIN_{name}", default)


@dataclass(frozen=True)
class ChannelSettings:
    """The SMPP endpoint the settings point at (``QIXIN_SMPP_*``).

    Port 0 (the default) means the embedded simulators; any other port makes the platform keep one
    SMPP channel row named ``name`` pointed at that endpoint. All other channels are data
    (``qixin channels``, ``/admin/channels``)."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: start the built-in simulator and use its port
    system_id: str = "qixin"
    password: str = "qixin"
    window: int = 256
    name: str = "smpp-sim"


@dataclass(frozen=True)
class ComplianceSettings:
    """Compliance defaults (issue 4, docs/compliance.md); per-account overrides live in account_policies."""

    sending_windows: bool = True  # defer messages outside 08:00–22:00 (marketing 09:00–20:00) Beijing time
    max_number_run: int = 20  # longest run of consecutive numbers a batch may hold; 0 turns the check off
    rate_limits: bool = True  # per-recipient frequency limits (memory, or Redis when redis_url is set)
    verification_limit: str = "1/minute;5/hour;10/day"  # per number per account+signature
    any_sender_limit: str = "40/day"  # per number, whoever sends
    template_limit: str = "50/day"  # notification/marketing per number per template (free text: per account)
    same_content_limit: str = "1/day"  # identical marketing content per number
    optout_words: tuple[str, ...] = ("TD", "T", "N", "R", "退订")
    freeze_after: int = 10  # content violations within freeze_period that freeze the account; 0 = never
    freeze_period: int = 86_400  # seconds
    freeze_codes: tuple[str, ...] = ("CONTENT_FORBIDDEN", "LINK_FORBIDDEN")
    limits_prefix: str = "qixin-limits"  # Redis key prefix of the frequency counters


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # API security
    signature_skew: int = 300  # seconds either side of the server clock
    trusted_proxies: tuple[str, ...] = ()  # proxies whose X-Forwarded-For is believed (api/server.py); none: the peer
    # text
    max_parts: int = 10  # configurable maximum length of one message, in parts
    max_numbers_per_request: int = 100_000
    # dispatch
    lease_seconds: float = 30.0  # a claimed queue row returns to the queue after this
    claim_batch: int = 1000
    inflight_cap: int = 4000  # messages handed to connectors whose outcome is not yet durably stored
    flush_interval: float = 0.02
    submit_retries: int = 5
    # webhooks
    webhook_batch: int = 100
    webhook_timeout: float = 5.0
    webhook_backoff: tuple[int, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400)
    # billing (services/billing.py, statements.py, notify.py)
    billing_interval: float = 30.0  # seconds between housekeeping rounds (expiry, statements, notices)
    price_notice_days: int = 0  # a price plan must take effect at least this many days after it is made
    holidays: tuple[str, ...] = ()  # YYYY-MM-DD public holidays (not working days for dispute windows)
    auto_statements: bool = True  # issue last month's statements on the 1st (Asia/Shanghai)
    smtp_host: str = ""  # empty: no email is sent (notices stay pending)
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "billing@qixin.local"
    smtp_starttls: bool = False
    # simulator used by the embedded mode
    sim_receipt_delay: tuple[float, float] = (0.05, 0.5)
    # receipt stats that report a number ported to another carrier (携号转网); see services/portability.py
    ported_stats: tuple[str, ...] = ("PORTED", "PT:")
    # which built-in carrier simulators the embedded mode starts (one channel each)
    simulators: tuple[str, ...] = ("cmpp3", "sgip", "smgp", "smpp")
    channel: ChannelSettings = field(default_factory=ChannelSettings)
    compliance: ComplianceSettings = field(default_factory=ComplianceSettings)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qixin.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings(data_dir: str | Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment, then explicit overrides (CLI flags)."""
    channel = ChannelSettings(
        host=_env("SMPP_HOST", "127.0.0.1"),
        port=int(_env("SMPP_PORT", "0")),
        system_id=_env("SMPP_SYSTEM_ID", "qixin"),
        password=_env("SMPP_PASSWORD", "qixin"),
        window=int(_env("SMPP_WINDOW", "256")),
    )
    s = Settings(
        data_dir=Path(data_dir) if data_dir else Path(_env("DATA_DIR", "data")),
        database_url=_env("DATABASE_URL", ""),
        redis_url=_env("REDIS_URL", ""),
        trusted_proxies=tuple(x.strip() for x in _env("TRUSTED_PROXIES", "").split(",") if x.strip()),
        max_parts=int(_env("MAX_PARTS", "10")),
        lease_seconds=float(_env("LEASE_SECONDS", "30")),
        inflight_cap=int(_env("INFLIGHT_CAP", "4000")),
        channel=channel,
        ported_stats=tuple(x.strip().upper() for x in _env("PORTED_STATS", "PORTED,PT:").split(",") if x.strip()),
        price_notice_days=int(_env("PRICE_NOTICE_DAYS", "0")),
        holidays=tuple(d.strip() for d in _env("HOLIDAYS", "").split(",") if d.strip()),
        smtp_host=_env("SMTP_HOST", ""),
        smtp_port=int(_env("SMTP_PORT", "25")),
        smtp_user=_env("SMTP_USER", ""),
        smtp_password=_env("SMTP_PASSWORD", ""),
        smtp_from=_env("SMTP_FROM", "billing@qixin.local"),
        smtp_starttls=_env("SMTP_STARTTLS", "0") == "1",
        compliance=ComplianceSettings(
            sending_windows=_env("SENDING_WINDOWS", "on").lower() not in ("0", "off", "false", "no"),
            max_number_run=int(_env("MAX_NUMBER_RUN", "20")),
            rate_limits=_env("RATE_LIMITS", "on").lower() not in ("0", "off", "false", "no"),
            freeze_after=int(_env("FREEZE_AFTER", "10")),
        ),
    )
    clean = {k: v for k, v in overrides.items() if v is not None}
    return s.with_(**clean) if clean else s
