"""Special characters that carriers' gateways and handsets garble, refused before sending.

Rule SPECIAL_CHARACTERS (c003 8.3: "¥ ★ ^_^ & ☞ √ ※ and similar") — ``forbidden_characters(text)``
returns each offending character (or sequence) once, in order of first appearance.  Forbidden are:

1. Emoticon sequences ``^_^``, ``^-^``, ``^o^``, ``^^`` (and their full-width spelling).  A lone
   ``^`` is an ordinary character (``2^10``).
2. Characters named by the contract that no category rule below catches: ``¥``/``￥`` (write 元),
   ``&``/``＆`` (breaks form-encoded and XML gateway interfaces) and ``※``.
3. By Unicode general category:

   - ``So`` (other symbols: ★ ☆ ☞ ♥ ❤ ● ◆ ■ ▲, dingbats, box drawing, enclosed signs, pictographs)
     except ``° ℃ ℉ №``, which are part of GB2312 and appear in ordinary notifications;
   - ``Sm`` (mathematical symbols: √ ∞ ∑ and the arrows → ← ↑ ↓) except the common operators
     ``+ < = > | ~ ¬ ± × ÷ ≤ ≥ ≠ ≈`` and their full-width forms;
   - ``Sk`` (modifier symbols ´ ¨ ˜ ˇ …) except ``^`` and the back-tick, and their full-width forms;
   - ``Co`` (private use), ``Cn`` (unassigned) and surrogates ``Cs``: no handset can show them;
   - ``Cc`` control characters other than tab, line feed and carriage return.

4. Every character outside the Basic Multilingual Plane (U+10000 and above: emoji 😀, rare CJK
   extension characters): UCS-2, the encoding of Chinese SMS, cannot represent them.

Not refused: punctuation of both widths (，。！？、：；“”（）【】…), currency signs other than ¥
(``$ € £``), and invisible format characters such as U+200B — those are removed for matching by
``normalize`` rather than refused, since they are usually pasted in by accident.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Final

__all__ = ["FORBIDDEN_SEQUENCES", "char_name", "forbidden_characters"]

FORBIDDEN_SEQUENCES: Final[tuple[str, ...]] = ("^_^", "^-^", "^o^", "^O^", "^^", "＾＿＾", "＾－＾", "＾＾")

_EXPLICIT: Final = frozenset("¥￥&＆※")
_ALLOWED_SO: Final = frozenset("°℃℉№")
_ALLOWED_SM: Final = frozenset("+<=>|~¬±×÷≤≥≠≈＋＜＝＞｜～￢")
_ALLOWED_SK: Final = frozenset("^`＾｀")
_ALLOWED_CC: Final = frozenset("\t\n\r")

_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None


def _is_forbidden_bmp(ch: str) -> bool:
    if ch in _EXPLICIT:
        return True
    category = unicodedata.category(ch)
    if category == "So":
        return ch not in _ALLOWED_SO
    if category == "Sm":
        return ch not in _ALLOWED_SM
    if category == "Sk":
        return ch not in _ALLOWED_SK
    if category == "Cc":
        return ch not in _ALLOWED_CC
    return category in ("Co", "Cn", "Cs")


def _build_pattern() -> re.Pattern[str]:
    ranges: list[str] = []
    run_start = -1
    for cp in range(0x10001):
        forbidden = cp < 0x10000 and _is_forbidden_bmp(chr(cp))
        if forbidden and run_start < 0:
            run_start = cp
        elif not forbidden and run_start >= 0:
            last = cp - 1
            ranges.append(f"\\U{run_start:08x}" if last == run_start else f"\\U{run_start:08x}-\\U{last:08x}")
            run_start = -1
    ranges.append("\\U00010000-\\U0010ffff")
    sequences = "|".join(re.escape(seq) for seq in sorted(FORBIDDEN_SEQUENCES, key=len, reverse=True))
    return re.compile(f"{sequences}|[{''.join(ranges)}]")


def _get_pattern() -> re.Pattern[str]:
    global _pattern
    pattern = _pattern
    if pattern is None:
        with _lock:
            if _pattern is None:
                _pattern = _build_pattern()
            pattern = _pattern
    return pattern


def forbidden_characters(text: str) -> list[str]:
    """Distinct forbidden characters and sequences of ``text``, in order of first appearance."""
    found = _get_pattern().findall(text)
    if not found:
        return []
    return list(dict.fromkeys(found))


def char_name(item: str) -> str:
    """A readable description of a forbidden item for messages: ``'★' (U+2605 BLACK STAR)``."""
    if len(item) != 1:
        return repr(item)
    name = unicodedata.name(item, "")
    code = f"U+{ord(item):04X}"
    return f"{item!r} ({code} {name})" if name else f"{item!r} ({code})"
