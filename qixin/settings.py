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
    """The SMPP channel of the pipeline slice (issue 3 turns channels into data)."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: start the built-in simulator and use its port
    system_id: str = "qixin"
    password: str = "qixin"
    window: int = 256
    name: str = "smpp-sim"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # API security
    signature_skew: int = 300  # seconds either side of the server clock
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
    # simulator used by the embedded mode
    sim_receipt_delay: tuple[float, float] = (0.05, 0.5)
    channel: ChannelSettings = field(default_factory=ChannelSettings)

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
        max_parts=int(_env("MAX_PARTS", "10")),
        lease_seconds=float(_env("LEASE_SECONDS", "30")),
        inflight_cap=int(_env("INFLIGHT_CAP", "4000")),
        channel=channel,
    )
    clean = {k: v for k, v in overrides.items() if v is not None}
    return s.with_(**clean) if clean else s
