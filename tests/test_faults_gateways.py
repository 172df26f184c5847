"""Gateways that misbehave, for each of the four carrier protocols (the second half of the carrier faults
matrix, tests/test_faults_carriers.py has the first): a gateway that stops reading (TCP back-pressure), one
that restarts every ~2 s, one that sends each receipt before the submit answer naming its id, one that
answers flow control for a while and then recovers.

For every cell: nothing lost (all final, none failed), nothing double-billed (balance == ledger == the charge
for N; ``billing.verify`` and ``stats.verify`` clean), each message accepted by the carrier once (or at most
a window more per restart, where a submit written before the drop may have been accepted unanswered), the
channel recovers by itself, and the channel's metrics say what happened (window full while the gateway does
not read, ``binds`` up by a restart each, ``throttled`` equal to the carrier's flow-control answers,
receipts parked before their submit was stored).
"""

from __future__ import annotations

import asyncio
from typing import Any

import test_faults_carriers
from test_faults_carriers import Cell, _until

N = 160
cell = test_faults_carriers.cell  # the fixture: one platform per protocol


def health(c: Cell) -> dict[str, Any]:
    """The channel's health, as GET /admin/channels and /metrics report it."""
    return dict(c.link.health())


async def test_slow_reading_gateway(cell: Cell) -> None:
    sim = cell.sim
    before = sim.stats.submits
    sim.pause_reading(2.0)
    await cell.send(N)
    # the gateway reads nothing: the submits wait in the window (the metric says so), none reaches it
    await _until(lambda: health(cell)["window_used"] >= min(N, cell.window), timeout=2.0)
    assert sim.stats.submits == before
    # then it reads everything at once; a second pause while its receipts flow back
    await _until(lambda: sim.stats.receipts_sent >= N // 4)
    sim.pause_reading(1.5)
    await cell.settled(N)
    assert sim.stats.read_pauses == 2
    # pauses shorter than the request timeout: every submit answered late, none sent twice
    assert cell.accepted_by_carrier() == N, cell.accepted_by_carrier()
    await cell.check(N)
    assert cell.link.up and health(cell)["window_used"] == 0


async def test_gateway_restarting_every_two_seconds(cell: Cell) -> None:
    sim = cell.sim
    binds = health(cell)["binds"]
    sim.config.receipt_delay = (0.2, 5.0)  # receipts owed across the restarts
    await cell.send(N)
    restarts = 0
    # restarts while receipts are owed (the platform's reconnect backoff starts at a fraction of a second):
    # each drops every connection and refuses new ones for 0.3 s
    while restarts < 3 and (sim.stats.submits < N or sim.stats.receipts_pending):
        await asyncio.sleep(2.0 if restarts else 0.2)
        await sim.restart(0.3)
        restarts += 1
    await cell.settled(N, timeout=120)
    assert sim.stats.restarts == restarts >= 2
    assert N <= cell.accepted_by_carrier() <= N + restarts * cell.window, cell.accepted_by_carrier()
    await cell.check(N, exact_outcomes=cell.accepted_by_carrier() == N)
    await _until(lambda: cell.link.up)  # recovered by itself
    assert health(cell)["binds"] >= binds + restarts  # the metric: a bind again after each restart


async def test_receipts_before_submit_answers(cell: Cell) -> None:
    sim = cell.sim
    sim.config.receipts_first = 0.15
    parked = cell.r.platform.dispatcher.stats["parked"]
    await cell.send(N)
    await cell.settled(N)
    assert sim.stats.answers_held == N
    assert cell.accepted_by_carrier() == N
    await cell.check(N)  # each message has the status its early receipt carried
    # the metric (qixin_dispatch_parked): receipts that came before their submit was stored, matched later
    assert cell.r.platform.dispatcher.stats["parked"] > parked
    assert await cell.count("SELECT COUNT(*) FROM receipt_inbox") == 0


async def test_flow_control_for_a_while_then_recovery(cell: Cell) -> None:
    sim = cell.sim
    sim.config.throttle_tps = 10
    await cell.send(N)
    await _until(lambda: cell.answered(sim.THROTTLE_STATUS) >= 20)
    sim.config.throttle_tps = None  # the carrier recovers
    await cell.settled(N)
    throttled = cell.answered(sim.THROTTLE_STATUS)
    assert cell.accepted_by_carrier() == N  # each accepted exactly once, the throttled ones sent again
    await cell.check(N)
    assert health(cell)["throttled"] == throttled  # qixin_channel_throttled: every flow-control answer
    assert health(cell)["submit_errors"] == 0  # flow control is not an error of the channel
    assert cell.link.up
