"""Receipt latency: histograms kept with the receipts that make messages final, percentiles per group.

Rules:
- Two kinds (domain/latency.KINDS): ``submit_receipt`` = submission → the final receipt (the carrier's
  part), ``accept_final`` = acceptance (or the scheduled send time, when later) → final (the platform's
  queueing and the carrier together).
- Counted once per message, in the transaction that makes it final by a receipt
  (receipts.apply_receipts), from the dims that transaction already read (no extra query), through
  ``Tx.count``: one upsert per (hour, channel, account, bucket) per group commit. Messages that
  end without a receipt (failed at submission, expired) have no receipt latency and are not counted.
- The hour of a count is the hour (UTC) of the final receipt: a day's or a channel's percentiles are
  those of the messages that became final then. Histograms are never purged (retention keeps them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from qixin.domain import latency as rules
from qixin.store import latency as store
from qixin.store.db import Tx, add_into

HOUR_MS = 3_600_000


def record_finals(tx: Tx, finals: Iterable[tuple[str, int, int, int | None, int | None, int]]) -> None:
    """Count messages that became final by a receipt: (channel, account id, created_at, send_at,
    submitted_at, done_at) each, in ms. Both kinds share a row when they fall in the same bucket (the usual
    case: queueing takes far less than the carrier), so most finals touch one bucket, not two."""
    acc = tx.counters(store.add)  # summed per bucket over the group commit (Tx.count), no lookup per message
    bucket_of = rules.bucket_of
    for channel, account_id, created_at, send_at, submitted_at, done_at in finals:
        hour = done_at // HOUR_MS * HOUR_MS
        start = max(created_at, send_at or 0)
        add_into(acc, (hour, channel, account_id, bucket_of(done_at - start)), (0, 1))
        if submitted_at is not None:
            add_into(acc, (hour, channel, account_id, bucket_of(done_at - submitted_at)), (1, 0))


def histograms(rows: Sequence[Any], n_keys: int) -> dict[tuple[Any, ...], dict[str, dict[int, int]]]:
    """Rows of ``store.query`` (``n_keys`` group columns, the time bucket included, then bucket and one count
    per kind) merged into one histogram per group key and kind, in the order the rows come."""
    out: dict[tuple[Any, ...], dict[str, dict[int, int]]] = {}
    for r in rows:
        by_kind = out.setdefault(tuple(r[:n_keys]), {})
        b = int(r[n_keys])
        for i, kind in enumerate(store.KINDS):
            n = int(r[n_keys + 1 + i] or 0)
            if n:
                h = by_kind.setdefault(kind, {})
                h[b] = h.get(b, 0) + n
    return out
