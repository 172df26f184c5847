"""Number portability (携号转网): routing by the carrier a number really belongs to now.

Rules:
- A receipt whose stat matches ``PORTED_STATS`` says the number no longer belongs to the carrier its
  prefix names. An entry ending in ":" matches by prefix and the rest of the stat names the carrier it
  moved to ("PT:CTCC" → ctcc: 7 characters, so it fits CMPP's Stat field); otherwise ``err`` may name
  it (cmcc, cucc, ctcc, cbn). A carrier nobody named is recorded as "unknown", which only channels
  carrying every carrier accept. The stats are configuration (``QIXIN_PORTED_STATS``, comma-separated)
  because each gateway reports it its own way; the built-in simulators report "PT:<CARRIER>". SGIP
  reports carry only a state and an error code, so SGIP gateways need an operator-configured code.
- What was learned is kept in ``ported_numbers`` (the latest word wins) and is used for every later
  message to that number: accept routes and prices it by the recorded carrier. Staff can record
  numbers too (imports from the national portability data).
- Accept reads the table through a cache refreshed at most every ``ttl`` seconds, off the hot path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from qixin.errors import QxError
from qixin.store import portability as store
from qixin.store.db import Database, Tx, now_ms

PORTED_STATS: set[str] = {"PORTED", "PT:"}
# PORTED_STATS split for is_ported, which runs once per receipt: the exact stats, and the prefixes (":" at the end)
_EXACT: frozenset[str] = frozenset({"PORTED"})
_PREFIXES: tuple[str, ...] = ("PT:",)


def configure(stats: tuple[str, ...]) -> None:
    """The receipt stats that mean "ported" (the ``ported_stats`` setting), set once by the composition root."""
    global _EXACT, _PREFIXES
    PORTED_STATS.clear()
    PORTED_STATS.update(stats)
    _EXACT = frozenset(s for s in stats if not s.endswith(":"))
    _PREFIXES = tuple(s for s in stats if s.endswith(":"))


KNOWN_CARRIERS = frozenset({"cmcc", "cucc", "ctcc", "cbn"})


def is_ported(stat: str) -> bool:
    return stat in _EXACT or (bool(_PREFIXES) and stat.startswith(_PREFIXES))


def carrier_named(stat: str, err: str) -> str:
    """The carrier a portability receipt names: in the stat after a prefix entry, else in ``err``."""
    for s in _PREFIXES:
        if stat.startswith(s):
            named = stat[len(s) :].strip().lower()
            if named in KNOWN_CARRIERS:
                return named
    c = (err or "").strip().lower()
    return c if c in KNOWN_CARRIERS else "unknown"


def record(tx: Tx, items: Iterable[tuple[str, str]]) -> int:
    """Record (number, carrier) pairs; returns how many."""
    now = now_ms()
    rows = [(n, c, now) for n, c in items]
    store.upsert(tx, rows)
    return len(rows)


def import_numbers(tx: Tx, items: list[dict[str, str]]) -> int:
    """Staff import: [{"number": "138…", "carrier": "ctcc"}, …]."""
    pairs = []
    for item in items:
        number, carrier = str(item.get("number", "")).strip(), str(item.get("carrier", "")).strip().lower()
        if not (len(number) == 11 and number.isdigit()) or carrier not in KNOWN_CARRIERS:
            raise QxError("INVALID_REQUEST", f"携号转网记录无效：{item}")
        pairs.append((number, carrier))
    return record(tx, pairs)


class PortedNumbers:
    """number → carrier, for accept; refreshed at most every ``ttl`` seconds, never per number.

    Rows are only ever upserted with ``learned_at`` = now, so a refresh reads just what was learned
    since the last one (with a minute of overlap for processes whose clocks differ a little).
    """

    OVERLAP_MS = 60_000

    def __init__(self, db: Database, ttl: float = 5.0) -> None:
        self.db = db
        self.ttl = ttl
        self.map: dict[str, str] = {}
        self._at = 0.0
        self._seen = 0  # the newest learned_at read so far
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._at = 0.0

    async def refresh(self) -> None:
        if time.monotonic() - self._at < self.ttl:
            return
        async with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return
            since = self._seen - self.OVERLAP_MS
            rows = await self.db.read(lambda tx: store.learned_since(tx, since))
            for number, carrier, learned_at in rows:
                self.map[str(number)] = str(carrier)
                self._seen = max(self._seen, int(learned_at))
            self._at = time.monotonic()
