"""Shared driver of the per-protocol submit benches (``bench_{smpp,cmpp,sgip,smgp}_submit.py``).

Each script keeps its protocol specifics (simulator and client classes, the N-th submit, which field of a
response says "accepted", what it prints); this module does the rest:

- ``arg_parser``: ``-n``, ``--window`` and ``--no-receipts`` (plus the script's own options).
- ``simulator_process``: the protocol's simulator in a separate (spawned) process, on uvloop when installed;
  prints the event loop and the simulator's pid and port, stops the process on the way out.
- ``Receipts``: the client's ``on_deliver`` callback, counting receipts until every one arrived.
- ``submit_all``: N submits through a bound client, timed until every response arrived, with the CPU time
  of both processes (``Run.cpu``: the client from ``time.process_time``, the simulator from /proc on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from _harness import use_uvloop

CONTENT = b"Your verification code is 123456"


def arg_parser(window: int | list[int], extra: Callable[[argparse.ArgumentParser], None] | None = None) -> Any:
    """``-n`` (default 100000), ``--window`` (one size, or several when ``window`` is a list), the options
    ``extra`` adds, then ``--no-receipts``."""
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    if isinstance(window, list):
        ap.add_argument("--window", type=int, nargs="+", default=window)
    else:
        ap.add_argument("--window", type=int, default=window)
    if extra is not None:
        extra(ap)
    ap.add_argument("--no-receipts", action="store_true")
    return ap


def proc_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------------------------------
# The simulator process


def _serve(port_q: mp.Queue, simulator_class: Any, config_class: Any, receipts: bool, ready: Any) -> None:
    use_uvloop()

    async def main() -> None:
        sim = simulator_class(config=config_class(receipt_delay=(0.05, 0.2), receipts=receipts, window=512))
        port_q.put(await sim.start())
        if ready is not None:
            await ready(sim)
        await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def simulator_process(
    simulator_class: Any, config_class: Any, receipts: bool, ready: Any = None
) -> Iterator[tuple[int, int | None]]:
    """``(port, pid)`` of ``simulator_class`` started in a spawned process (receipts after 0.05-0.2 s, its
    window 512). ``ready(sim)``, a picklable coroutine function, runs in that process once it listens."""
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(q, simulator_class, config_class, receipts, ready), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=30)
        loop_name = use_uvloop()
        print(f"event loop: {loop_name}; simulator pid {proc.pid} on port {port}")
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.join(5)


# --------------------------------------------------------------------------------------------------
# Measuring


class Receipts:
    """The client's ``on_deliver``: counts what arrives until ``n`` did."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.got = 0
        self.done = asyncio.Event()

    def __call__(self, pdu: object) -> None:
        self.got += 1
        if self.got >= self.n:
            self.done.set()

    async def wait(self, t0: float, noun: str, unit: str) -> str:
        """Wait (up to 120 s) until all arrived: ``received N <noun> in Xs: R <unit>/s`` counted from ``t0``."""
        await asyncio.wait_for(self.done.wait(), 120)
        t2 = time.perf_counter()
        return f"received {self.got} {noun} in {t2 - t0:.2f}s: {self.got / (t2 - t0):,.0f} {unit}/s"


@dataclass
class Run:
    n: int
    accepted: int
    t0: float  # perf_counter before the first submit
    t1: float  # perf_counter once every response arrived
    sim_pid: int | None = None
    c0: float = 0.0  # process_time before the first submit
    s0: float | None = None  # the simulator's CPU seconds then

    def summary(self) -> str:
        """``submitted N (A accepted) in Xs: R submits/s``."""
        seconds = self.t1 - self.t0
        return f"submitted {self.n} ({self.accepted} accepted) in {seconds:.2f}s: {self.n / seconds:,.0f} submits/s"

    def cpu(self) -> tuple[float, float | None]:
        """CPU seconds since the first submit: the client's, and the simulator's (None where unknown)."""
        client = time.process_time() - self.c0
        s1 = proc_cpu(self.sim_pid)
        return client, (None if self.s0 is None or s1 is None else s1 - self.s0)


async def submit_all(
    client: Any, make_pdu: Callable[[int], Any], n: int, result_field: str, sim_pid: int | None = None
) -> Run:
    """``make_pdu(0)`` .. ``make_pdu(n - 1)`` through ``client.submit``, until every response arrived; a
    response with ``result_field`` 0 counts as accepted."""
    c0 = time.process_time()
    s0 = proc_cpu(sim_pid)
    t0 = time.perf_counter()
    futs = []
    for i in range(n):
        futs.append(await client.submit(make_pdu(i)))
    resps = await asyncio.gather(*futs)
    t1 = time.perf_counter()
    accepted = sum(1 for r in resps if getattr(r, result_field) == 0)
    return Run(n, accepted, t0, t1, sim_pid, c0, s0)
