"""Text normalisation for forbidden-word matching (evasion folding).

Rule NORMALIZE_FOR_MATCHING — ``normalize(text)`` folds a message so that the usual ways of hiding a
forbidden word from a filter no longer work.  It is used on both sides of the match: on lexicon words
when the automaton is built and on every message before it is searched.

1. Compatibility folding, character by character (Unicode NFKC of each character): full-width forms
   U+FF01–U+FF5E become their ASCII twins (``ｇａｍｂｌｅ`` → ``gamble``), the ideographic space U+3000
   becomes a space, and so do circled / mathematical / styled letters and digits (``①`` → ``1``,
   ``𝐠`` → ``g``) and CJK compatibility ideographs and Kangxi radicals.
2. Case folding: letters are lower-cased.
3. Separator removal: every character that can be slipped *between* the characters of a word is
   deleted — whitespace (including U+3000), punctuation and symbols of both widths (Unicode
   categories Z*, P*, S*), control and format characters (Cc, Cf: zero-width space U+200B, ZWNJ
   U+200C, ZWJ U+200D, word joiner U+2060, BOM U+FEFF, soft hyphen U+00AD, …), combining marks
   (Mn, Me: strike-through overlays, variation selectors) and private-use characters (Co).
   ``股 票``, ``股.票``, ``股\u200b票`` and ``股★票`` all become ``股票``.
4. Traditional → simplified Chinese with OpenCC ``t2s`` (``賭博`` → ``赌博``).  OpenCC is run once,
   lazily, over every CJK character of the BMP (U+3400–U+4DBF, U+4E00–U+9FFF, U+F900–U+FAFF) to
   derive a character map, which is merged into the same table.  Converting character by character
   rather than phrase by phrase is what matching needs: lexicon words and messages are folded by the
   same map, so a word is found whatever its context, and no OpenCC call is made per message.

All four steps are therefore a single ``str.translate`` per message with a table computed once
(lazily).  The result is only meant for matching and is never shown to anybody; positions reported
against the normalised text do not correspond to positions in the original message.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Protocol

__all__ = ["has_astral", "normalization_tables", "normalize"]

# Code point ranges scanned when the translation table is built.  Everything outside them is left
# untouched (they hold no separators, no compatibility forms worth folding, or are unassigned).
_SCAN_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0xD800),  # BMP below the surrogates
    (0xE000, 0x10000),  # private use, compatibility ideographs, half/full-width forms, specials
    (0x1D400, 0x1D800),  # mathematical alphanumeric symbols (styled letters used for evasion)
    (0x1F000, 0x1FB00),  # enclosed alphanumerics, emoji and pictographs
    (0x2F800, 0x2FA20),  # CJK compatibility ideographs supplement
    (0xE0000, 0xE0080),  # tag characters (invisible)
)

# Unicode general categories whose characters are deleted as separators.
# Where OpenCC's traditional → simplified map is applied (BMP CJK blocks).
_CJK_RANGES: tuple[tuple[int, int], ...] = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))

_DELETED_CATEGORIES = frozenset(
    {"Zs", "Zl", "Zp", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"}
    | {"Cc", "Cf", "Co", "Mn", "Me"}
)


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


# str.translate table for the BMP as a list indexed by code point (list indexing is about twice as
# fast as dict lookups): an int (the code point itself, unchanged), a replacement string, or None
# (deleted).  Characters beyond the BMP raise IndexError inside translate and are left unchanged, so
# texts containing them get a first pass with the (small) astral dict.
_TableEntry = int | str | None

_lock = threading.RLock()
_tables: tuple[list[_TableEntry], dict[int, str | None]] | None = None
_converter: _Converter | None = None
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _is_separator(ch: str) -> bool:
    return unicodedata.category(ch) in _DELETED_CATEGORIES


def _build_tables() -> tuple[list[_TableEntry], dict[int, str | None]]:
    bmp: list[_TableEntry] = list(range(0x10000))
    astral: dict[int, str | None] = {}
    for start, stop in _SCAN_RANGES:
        for cp in range(start, stop):
            ch = chr(cp)
            entry: str | None
            if _is_separator(ch):
                entry = None
            else:
                folded = unicodedata.normalize("NFKC", ch).lower()
                folded = "".join(c for c in folded if not _is_separator(c))
                if folded == ch:
                    continue
                entry = folded or None
            if cp < 0x10000:
                bmp[cp] = entry
            else:
                astral[cp] = entry
    _merge_traditional_to_simplified(bmp)
    return bmp, astral


def _merge_traditional_to_simplified(bmp: list[_TableEntry]) -> None:
    positions: list[int] = []
    chars: list[str] = []
    for start, stop in _CJK_RANGES:
        for cp in range(start, stop):
            entry = bmp[cp]
            current = chr(entry) if isinstance(entry, int) else entry
            if current is not None and len(current) == 1:
                positions.append(cp)
                chars.append(current)
    converter = _get_converter()
    converted = converter.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # never seen; fall back to one call per character
        converted = [converter.convert(ch) for ch in chars]
    for cp, before, after in zip(positions, chars, converted, strict=True):
        if after != before and after:
            bmp[cp] = after


def _get_tables() -> tuple[list[_TableEntry], dict[int, str | None]]:
    global _tables
    tables = _tables
    if tables is None:
        with _lock:
            if _tables is None:
                _tables = _build_tables()
            tables = _tables
    return tables


def _get_converter() -> _Converter:
    global _converter
    converter = _converter
    if converter is None:
        with _lock:
            if _converter is None:
                import opencc

                _converter = opencc.OpenCC("t2s")
            converter = _converter
    return converter


def normalization_tables() -> tuple[list[_TableEntry], dict[int, str | None]]:
    """The (BMP list, astral dict) translate tables behind :func:`normalize` (built on first use)."""
    return _get_tables()


def has_astral(text: str) -> bool:
    """True when ``text`` has characters beyond the BMP (the slow path of the tables)."""
    return not text.isascii() and _ASTRAL.search(text) is not None


def normalize(text: str) -> str:
    """Fold ``text`` for matching: width, case, separators removed, traditional → simplified."""
    bmp, astral = _get_tables()
    if has_astral(text):
        text = text.translate(astral)
    return text.translate(bmp)
