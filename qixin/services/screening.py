"""The seam between accept and compliance: what a screener is asked and what it answers.

Accept (services/accept.py) builds a ``ScreenRequest`` per send request after the numbers are parsed and
before anything is priced or billed; a ``Screener`` (services/compliance/service.py, or ``NoScreening``)
answers which numbers are refused and when the rest may go. Both sides import these types from here, so
neither imports the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from qixin.services.accounts import ApiKey


@dataclass(slots=True)
class ScreenRequest:
    """What compliance needs to judge one send request (before any money moves)."""

    key: ApiKey
    msg_type: str
    content: str  # the full text, 【签名】 included
    signature: str
    template_id: int | None
    numbers: list[tuple[str, str]]  # (number, carrier), valid and deduplicated
    send_at: int | None  # ms UTC requested by the customer, None = now
    body: dict[str, Any]  # the request, for optional fields compliance may read (e.g. audience)
    dry_run: DryRun | None = None  # a preview: check only, count nothing (see DryRun)


@dataclass(slots=True)
class DryRun:
    """A preview's own tally, shared by the requests of one preview (e.g. the chunks of a file job):
    screening checks against it instead of reserving, so nothing shared is counted or given back.

    ``counts``: frequency-limit counter key -> what the requests already previewed would have added had
    they been accepted (a later chunk sees the earlier chunks' numbers as the real run would)."""

    counts: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Screening:
    """Compliance's answer: numbers refused (each with a code), and when the rest may be sent."""

    rejected: dict[str, str] = field(default_factory=dict)  # number -> error code
    send_at: int | None = None  # ms UTC; a deferral (e.g. outside the sending window) or the request's own
    note: dict[str, Any] = field(default_factory=dict)  # what compliance wants stored with the batch
    # gives back what screening reserved (frequency-limit counts) when the batch is not committed
    release: Callable[[], Awaitable[None]] | None = None


class Screener(Protocol):
    async def screen(self, req: ScreenRequest) -> Screening: ...


class NoScreening:
    """No compliance rules: every valid number passes, at the time asked for."""

    async def screen(self, req: ScreenRequest) -> Screening:
        return Screening(send_at=req.send_at)
