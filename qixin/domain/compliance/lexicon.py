"""Forbidden-word lexicon: categories, entries, allow-list, and the compiled matcher.

Rule FORBIDDEN_WORDS — a message is refused when its normalised text (see ``normalize.py``) contains
a lexicon word.  Every word belongs to exactly one category of :data:`CATEGORIES`; the categories are
those of the service contracts (REQUIREMENTS R3, c003 8.2) plus political-sensitive and fraud words,
and ``other`` for staff additions that fit nowhere else.

Rule ALLOW_LIST — known false positives are listed as allow-listed phrases.  A hit that lies entirely
inside an occurrence of an allow-listed phrase in the normalised text is ignored: with ``洗钱`` in the
lexicon and ``反洗钱`` allowed, ``根据反洗钱规定…`` passes, but ``帮你洗钱`` does not, and neither does
a text that contains ``反洗钱`` *and* another, independent ``洗钱``.

A :class:`Lexicon` is immutable and built once per ``version``: all words and allow-listed phrases
are normalised and compiled into one Aho-Corasick automaton (pyahocorasick), so a check is one scan
of the text whatever the size of the lexicon.  Staff edits produce a new version, i.e. a new
``Lexicon`` object that callers swap in atomically.

Implementation note: pyahocorasick finds a node's child by a linear scan of its children, so a trie
whose root has thousands of children (one per distinct first character of 10,000 Chinese words) is
slow.  Each character of the lexicon's alphabet is therefore spelt with two symbols (high, low) of a
small alphabet of about sqrt(N) symbols each, with disjoint high and low symbol sets so that matches
can only start on a character boundary; characters outside the lexicon's alphabet become one
sentinel pair.  No node then has more than about sqrt(N) children.  The translate table that spells
characters as pairs is composed with the normalisation table, so a message is normalised and
encoded by one ``str.translate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import ahocorasick

from qixin.domain.compliance.normalize import has_astral, normalization_tables, normalize

__all__ = ["CATEGORIES", "Hit", "Lexicon", "LexiconEntry", "category_label"]

CATEGORIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "stocks": "股票",
        "immigration": "移民",
        "real_estate": "房产",
        "education": "教育培训",
        "recruitment": "招聘",
        "lottery": "彩票",
        "rebate": "返利",
        "loan": "贷款",
        "debt_collection": "催收",
        "investment": "投资理财",
        "gambling": "赌博",
        "prize": "中奖",
        "one_yuan": "一元购",
        "counterfeit": "假货",
        "medical": "医疗",
        "cosmetic_surgery": "整形",
        "beauty": "美容",
        "club": "会所",
        "bar": "酒吧",
        "foot_massage": "足浴",
        "violence": "暴力",
        "threat": "恐吓",
        "pornography": "色情",
        "fur": "皮草",
        "exam_help": "代考",
        "trademark": "商标注册",
        "add_contact": "加群",
        "personal_data": "个人信息买卖",
        "sms_channel": "短信通道推广",
        "decoration": "装修建材家具",
        "game": "游戏",
        "exhibition": "展会",
        "website_promotion": "网站推广",
        "coupon": "优惠券",
        "card": "办卡",
        "insurance": "保险",
        "alcohol": "酒类",
        "user_acquisition": "拉新召回",
        "court_summons": "法院传票",
        "political": "政治敏感",
        "fraud": "诈骗",
        "other": "其他违禁内容",
    }
)


def category_label(code: str) -> str:
    """Chinese label of a category code (the code itself when unknown)."""
    return CATEGORIES.get(code, code)


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    """A forbidden word as staff entered it, and its category code (a key of :data:`CATEGORIES`)."""

    word: str
    category: str


@dataclass(frozen=True, slots=True)
class Hit:
    """A forbidden word found in a text.

    ``word`` and ``category`` come from the lexicon entry; ``position`` is the index of the first
    character of the match in the *normalised* text.
    """

    word: str
    category: str
    position: int


# Automaton payload: (encoded length, entries for this key, key is an allow-listed phrase).
_Payload = tuple[int, tuple[LexiconEntry, ...], bool]

_SYMBOL_BASE = 0x1000  # first code point of the encoding symbols (any unused range works)


class PairEncoder:
    """Spells each character as a (high, low) symbol pair; see the module docstring.

    ``encode_raw`` folds and encodes a raw message in one ``str.translate``: its table is the
    normalisation table composed with the pair spelling. With ``fold_digits`` every digit spells as
    ``0`` (the content classifier's n-grams treat all digits alike).
    """

    __slots__ = ("_astral", "_pairs", "_raw", "_sentinel", "never")

    def __init__(self, alphabet: Iterable[str], fold_digits: bool = False) -> None:
        chars = sorted(set(alphabet))
        base = max(2, math.isqrt(len(chars)) + 1)  # base * base > len(chars) (index 0 is the sentinel)
        high0, low0 = _SYMBOL_BASE, _SYMBOL_BASE + base

        def pair(index: int) -> str:
            return chr(high0 + index // base) + chr(low0 + index % base)

        self._sentinel = sentinel = pair(0)
        self.never = chr(low0 + base)  # a symbol no text ever encodes to
        pairs: list[str] = [sentinel] * 0x10000
        self._astral: dict[str, str] = {}
        for index, ch in enumerate(chars, start=1):
            if ord(ch) < 0x10000:
                pairs[ord(ch)] = pair(index)
            else:
                self._astral[ch] = pair(index)
        if fold_digits:
            for digit in "123456789":
                pairs[ord(digit)] = pairs[ord("0")]
        self._pairs = pairs
        bmp, _ = normalization_tables()
        raw: list[str | None] = [None] * 0x10000
        for cp, entry in enumerate(bmp):
            if entry is None:
                continue
            if isinstance(entry, int):
                raw[cp] = pairs[entry]
            else:
                raw[cp] = "".join(self._pair_of(ch) for ch in entry)
        self._raw = raw

    def _pair_of(self, ch: str) -> str:
        return self._pairs[ord(ch)] if ord(ch) < 0x10000 else self._astral.get(ch, self._sentinel)

    @property
    def sentinel(self) -> str:
        return self._sentinel

    def encode_normalized(self, normalized: str) -> str:
        if not has_astral(normalized):
            return normalized.translate(self._pairs)
        return "".join(self._pair_of(ch) for ch in normalized)

    def encode_raw(self, text: str) -> str:
        if not has_astral(text):
            return text.translate(self._raw)
        return self.encode_normalized(normalize(text))


class Lexicon:
    """An immutable, compiled forbidden-word lexicon of one ``version``.

    Raises ``ValueError`` for an unknown category, or for a word or allow-listed phrase that
    normalises to nothing or (for pure ASCII) to a single character, which would match everywhere.
    """

    __slots__ = ("_allow", "_automaton", "_encoder", "_entries", "version")

    def __init__(self, entries: Iterable[LexiconEntry], allow: Iterable[str] = (), version: int = 0) -> None:
        self.version = version
        self._entries: tuple[LexiconEntry, ...] = tuple(entries)
        self._allow: tuple[str, ...] = tuple(allow)
        by_key: dict[str, list[LexiconEntry]] = {}
        for entry in self._entries:
            if entry.category not in CATEGORIES:
                raise ValueError(f"unknown category {entry.category!r} for word {entry.word!r}")
            key = _checked_key(entry.word)
            bucket = by_key.setdefault(key, [])
            if entry not in bucket:
                bucket.append(entry)
        allowed_keys = {_checked_key(phrase) for phrase in self._allow}
        keys = by_key.keys() | allowed_keys
        self._encoder = encoder = PairEncoder(ch for key in keys for ch in key)
        automaton = ahocorasick.Automaton()
        if keys:
            # Make the sentinel's symbols the root's first children, so that the many characters
            # outside the alphabet cost one comparison; these two words can never match.
            sentinel = encoder.sentinel
            automaton.add_word(sentinel[0] + encoder.never, (0, (), False))
            automaton.add_word(sentinel[1] + encoder.never, (0, (), False))
            for key in sorted(keys):
                payload: _Payload = (2 * len(key), tuple(by_key.get(key, ())), key in allowed_keys)
                automaton.add_word(encoder.encode_normalized(key), payload)
            automaton.make_automaton()
        self._automaton: Any = automaton

    @property
    def entries(self) -> tuple[LexiconEntry, ...]:
        return self._entries

    @property
    def allow(self) -> tuple[str, ...]:
        return self._allow

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Lexicon(version={self.version}, words={len(self._entries)}, allow={len(self._allow)})"

    def check(self, text: str) -> list[Hit]:
        """Forbidden words in ``text`` (normalised here), in order of position, allow-list applied."""
        if not text or self._automaton.kind != ahocorasick.AHOCORASICK:
            return []
        return self._search(self._encoder.encode_raw(text))

    def check_normalized(self, normalized: str) -> list[Hit]:
        """Like :meth:`check` for a text that is already the output of :func:`normalize`."""
        if not normalized or self._automaton.kind != ahocorasick.AHOCORASICK:
            return []
        return self._search(self._encoder.encode_normalized(normalized))

    def _search(self, encoded: str) -> list[Hit]:
        hits: list[tuple[int, int, LexiconEntry]] = []
        allowed_spans: list[tuple[int, int]] = []
        for end, (length, entries, is_allowed) in self._automaton.iter(encoded):
            start = end - length + 1
            if is_allowed:
                allowed_spans.append((start, end))
            for entry in entries:
                hits.append((start, end, entry))
        if not hits:
            return []
        if allowed_spans:
            hits = [hit for hit in hits if not any(a0 <= hit[0] and hit[1] <= a1 for a0, a1 in allowed_spans)]
        hits.sort(key=lambda hit: (hit[0], hit[1]))
        return [Hit(entry.word, entry.category, start // 2) for start, _end, entry in hits]


def _checked_key(word: str) -> str:
    key = normalize(word)
    if not key or (len(key) == 1 and key.isascii()):
        raise ValueError(f"lexicon word {word!r} normalises to {key!r}, which is too short to match on")
    return key
