"""64-bit time-ordered ids for batches and messages, generated in-process (no database round trip).

Layout: milliseconds since 2024-01-01 UTC (41 bits) | node (10 bits) | sequence (12 bits).
The node is the ``node_id`` setting (``QIXIN_NODE_ID``, applied by the composition root) or random per
process; the clock never goes backwards within a process
(a burst that exhausts a millisecond borrows the next one).
"""

from __future__ import annotations

import random
import threading
import time

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


class IdGen:
    def __init__(self, node: int | None = None) -> None:
        self.node = (node if node is not None else random.randrange(1024)) & 0x3FF
        self._last = 0
        self._seq = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> list[int]:
        """``n`` new ids, increasing."""
        out: list[int] = []
        with self._lock:
            ms = int(time.time() * 1000) - EPOCH_MS
            if ms > self._last:
                self._last, self._seq = ms, 0
            node_bits = self.node << 12
            while len(out) < n:
                take = min(n - len(out), 4096 - self._seq)
                if take <= 0:
                    self._last += 1
                    self._seq = 0
                    continue
                start = (self._last << 22) | node_bits | self._seq  # seq + take <= 4096: stays in this node's block
                out.extend(range(start, start + take))
                self._seq += take
        return out

    def one(self) -> int:
        return self.take(1)[0]


ids = IdGen()


def configure(node: int | None) -> None:
    """Set this process's node (the ``node_id`` setting); None keeps the random one."""
    if node is not None:
        with ids._lock:
            ids.node = node & 0x3FF
