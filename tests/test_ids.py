"""Message and batch ids: unique, increasing, within their node's block, for any node and burst size."""

from __future__ import annotations

import itertools

import pytest

from qixin.ids import IdGen


@pytest.mark.parametrize("node", [0, 1, 2, 3, 511, 1023])
@pytest.mark.parametrize("sizes", [[1], [4095, 1, 1], [4096], [4097], [20_001], [3, 100_000, 7]])
def test_ids_unique_increasing_and_tagged_with_node(node: int, sizes: list[int]) -> None:
    gen = IdGen(node=node)
    seen: list[int] = []
    for n in sizes:
        got = gen.take(n)
        assert len(got) == n
        seen += got
    assert all(b > a for a, b in itertools.pairwise(seen))
    assert all((i >> 12) & 0x3FF == node for i in seen)
    assert all(i < 2**63 for i in seen)
