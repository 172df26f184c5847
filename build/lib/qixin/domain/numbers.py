"""Phone number rules: mainland mobile normalisation, carrier and province, masking, batch parsing.

Rules implemented here (pure; the only file read is the shipped prefix table, once per process):

* A mainland China mobile number is 11 digits, starts with 1, second digit 3-9. Input may carry
  spaces, tabs, dashes, full-width digits and a +86 / 86 / 0086 country prefix; anything else is
  invalid. ``normalize_cn_mobile`` returns the bare 11 digits.
* Carrier (号段归属运营商) and province come from a prefix table derived from the ``phonenumbers``
  package's carrier and geocoding data: carrier by the longest matching 2-4 digit prefix of the
  11-digit number (virtual-operator ranges such as 170x / 171 / 167 map to their host carrier as
  phonenumbers says; a few ranges phonenumbers does not list are filled from ``_CARRIER_SUPPLEMENT``),
  province by the 7-digit prefix (号段 + H 码). Unknown gives carrier ``"unknown"`` / province ``""``.
* The table is generated ahead of time into ``qixin/domain/data/cn_mobile_prefixes.txt`` by
  ``build_prefix_table()`` (run ``python -m qixin.domain.numbers`` after upgrading phonenumbers),
  because importing phonenumbers' geocoding data takes about half a second; the hot path never
  calls phonenumbers.
* ``mask`` shows the first 3 and last 4 characters of an 11+ character number; shorter numbers show
  proportionally less, so a short number is never shown in full.
* ``parse_numbers`` normalises a batch, reports invalid entries (as given, stripped) and repeated
  numbers (normalised, one entry per repeat), keeps first-seen order and skips blank entries.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

__all__ = [
    "CARRIERS",
    "PROVINCES",
    "NumberInfo",
    "ParsedNumbers",
    "PrefixTable",
    "build_prefix_table",
    "mask",
    "normalize_cn_mobile",
    "parse_numbers",
    "prefix_table",
]

CARRIERS: dict[str, str] = {
    "cmcc": "中国移动",
    "cucc": "中国联通",
    "ctcc": "中国电信",
    "cbn": "中国广电",
    "intl": "国际",
    "unknown": "未知",
}

# Province short names as used in the prefix table. Index 0 is "unknown".
PROVINCES: tuple[str, ...] = (
    "",
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽",
    "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西",
    "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)  # fmt: skip

# Ranges phonenumbers has no carrier for; allocations published by MIIT.
_CARRIER_SUPPLEMENT: dict[str, str] = {
    "162": "ctcc",  # China Telecom virtual operators
    "165": "cmcc",  # China Mobile virtual operators
    "1349": "ctcc",  # satellite range, operated by China Telecom
}

_CARRIER_BY_ZH: dict[str, str] = {name: code for code, name in CARRIERS.items()}

DATA_FILE_NAME = "cn_mobile_prefixes.txt"

_MOBILE_RE = re.compile(r"(?:\+86|0086|86)?(1[3-9][0-9]{9})")
_INTL_RE = re.compile(r"(?:\+|00)[1-9][0-9]{6,14}")
# Removed before matching: spaces (ASCII, full-width, no-break), tabs and dashes; full-width digits
# and plus sign are folded to ASCII.
_CLEAN = str.maketrans(
    {
        " ": None,
        "\t": None,
        "\u3000": None,
        "\xa0": None,
        "-": None,
        "－": None,
        "＋": "+",
        **{chr(0xFF10 + d): str(d) for d in range(10)},
    }
)

_FIRST = 3  # mobile prefixes cover 13x .. 19x
_SPAN7 = 700_000  # 7-digit prefixes 1300000 .. 1999999


def normalize_cn_mobile(raw: str) -> str | None:
    """Return the 11-digit mainland mobile number in ``raw``, or None if it is not one."""
    m = _MOBILE_RE.fullmatch(raw)
    if m is None:
        m = _MOBILE_RE.fullmatch(raw.strip().translate(_CLEAN))
        if m is None:
            return None
    return m.group(1)


@dataclass(frozen=True, slots=True)
class NumberInfo:
    number: str
    carrier: str  # a key of CARRIERS
    province: str  # short province name, "" if unknown


class PrefixTable:
    """Carrier and province by number prefix; build with ``prefix_table()``."""

    __slots__ = ("_carrier4", "_province7")

    def __init__(self, carrier4: list[str], province7: bytes) -> None:
        if len(carrier4) != 700 or len(province7) != _SPAN7:
            raise ValueError("malformed prefix table")
        self._carrier4 = carrier4  # by int(number[1:4]) - 300
        self._province7 = province7  # PROVINCES index by int(number[1:7]) - 300000

    @classmethod
    def from_text(cls, text: str) -> PrefixTable:
        """Load the format written by ``build_prefix_table``."""
        carriers: dict[str, str] = {}
        runs: list[tuple[int, int]] = []
        index = {name: i for i, name in enumerate(PROVINCES)}
        index["-"] = 0
        section = ""
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line
                continue
            key, value = line.split()
            if section == "[carrier]":
                if value not in CARRIERS:
                    raise ValueError(f"unknown carrier code {value!r}")
                carriers[key] = value
            elif section == "[province]":
                runs.append((int(key) - 1_000_000 - _FIRST * 100_000, index[value]))
            else:
                raise ValueError(f"line outside a section: {line!r}")
        carrier4 = ["unknown"] * 700
        for prefix in sorted(carriers, key=len):  # longer prefixes override shorter ones
            width = 4 - len(prefix)
            start = int(prefix[1:]) * 10**width - _FIRST * 100
            for i in range(max(start, 0), min(start + 10**width, 700)):
                carrier4[i] = carriers[prefix]
        province7 = bytearray(_SPAN7)
        ends = [start for start, _ in runs[1:]] + [_SPAN7]
        for (start, code), end in zip(runs, ends, strict=True):
            if code:
                province7[start:end] = bytes((code,)) * (end - start)
        return cls(carrier4, bytes(province7))

    def lookup(self, number11: str) -> NumberInfo:
        """Carrier and province of a number (normally the 11 digits from ``normalize_cn_mobile``).

        Other forms are normalised first; an international number (+ or 00 and a country code other
        than 86) gives carrier ``"intl"``; anything else ``"unknown"``.
        """
        n = number11
        if not (len(n) == 11 and n.isascii() and n.isdigit() and n[0] == "1" and n[1] >= "3"):
            norm = normalize_cn_mobile(n)
            if norm is None:
                cleaned = n.strip().translate(_CLEAN)
                carrier = "intl" if _INTL_RE.fullmatch(cleaned) else "unknown"
                return NumberInfo(n, carrier, "")
            n = norm
        p7 = int(n[1:7]) - _FIRST * 100_000
        return NumberInfo(n, self._carrier4[p7 // 1000], PROVINCES[self._province7[p7]])

    def lookup_tuple(self, number11: str) -> tuple[str, str, str]:
        """``lookup`` as a plain (number, carrier, province) tuple: the bulk path (no object per number)."""
        n = number11
        if len(n) == 11 and n.isascii() and n.isdigit() and n[0] == "1" and n[1] >= "3":
            p7 = int(n[1:7]) - _FIRST * 100_000
            return n, self._carrier4[p7 // 1000], PROVINCES[self._province7[p7]]
        info = self.lookup(n)
        return info.number, info.carrier, info.province

    def carrier_of(self, number11: str) -> str:
        """Just the carrier code of a number (cheaper than ``lookup`` for routing)."""
        n = number11
        if len(n) == 11 and n.isascii() and n.isdigit() and n[0] == "1" and n[1] >= "3":
            return self._carrier4[int(n[1:4]) - _FIRST * 100]
        return self.lookup(n).carrier


def _data_text() -> str:
    return (resources.files("qixin.domain") / "data" / DATA_FILE_NAME).read_text("utf-8")


@lru_cache(maxsize=1)
def prefix_table() -> PrefixTable:
    """The process-wide prefix table, loaded from the shipped data file on first use."""
    return PrefixTable.from_text(_data_text())


# --- generation from phonenumbers (development time only) ----------------------------------------


def _province_of(description: str) -> int:
    for i, name in enumerate(PROVINCES):
        if i and description.startswith(name):
            return i
    raise ValueError(f"no province in geocoding description {description!r}")


def build_prefix_table() -> str:
    """Build the prefix table text from the installed phonenumbers data (slow: about 1 s).

    Iterates phonenumbers' per-prefix dicts (keys such as ``'861380013'``) directly.
    """
    import phonenumbers
    from phonenumbers.carrierdata import CARRIER_DATA
    from phonenumbers.geodata import GEOCODE_DATA

    carriers: dict[str, str] = {}
    for key, names in CARRIER_DATA.items():
        if key.startswith("861") and len(key) > 3 and key[3] in "3456789":
            zh = names.get("zh", "")
            if zh not in _CARRIER_BY_ZH:
                raise ValueError(f"unknown carrier name {zh!r} for prefix {key}")
            carriers[key[2:]] = _CARRIER_BY_ZH[zh]
    for prefix, code in _CARRIER_SUPPLEMENT.items():
        if not any(prefix.startswith(p) and len(p) >= 3 for p in carriers):
            carriers[prefix] = code

    province7 = bytearray(_SPAN7)
    geo = [
        (key[2:], names["zh"])
        for key, names in GEOCODE_DATA.items()
        if key.startswith("861") and len(key) > 3 and key[3] in "3456789" and "zh" in names
    ]
    for prefix, description in sorted(geo, key=lambda kv: len(kv[0])):  # longer prefixes win
        if len(prefix) > 7:
            raise ValueError(f"geocoding prefix longer than 7 digits: {prefix}")
        width = 7 - len(prefix)
        start = int(prefix[1:]) * 10**width - _FIRST * 100_000
        province7[start : start + 10**width] = bytes((_province_of(description),)) * 10**width

    lines = [
        "# qixin mainland China mobile prefix table (号段表). Do not edit by hand.",
        f"# Generated by qixin.domain.numbers.build_prefix_table() from phonenumbers {phonenumbers.__version__}.",
        "# Regenerate with: python -m qixin.domain.numbers",
        "# [carrier]: <prefix of the 11-digit number> <carrier code>; the longest matching prefix wins.",
        "# [province]: <7-digit prefix> <province>; a line starts a run that lasts until the next line;",
        "# '-' means unknown.",
        "[carrier]",
    ]
    lines += [f"{prefix} {code}" for prefix, code in sorted(carriers.items())]
    lines.append("[province]")
    prev = -1
    for i, prov in enumerate(province7):
        if prov != prev:
            lines.append(f"{i + 1_000_000 + _FIRST * 100_000} {PROVINCES[prov] or '-'}")
            prev = prov
    return "\n".join(lines) + "\n"


def write_prefix_table(path: Path | None = None) -> Path:
    """Write ``build_prefix_table()`` to the shipped data file (or ``path``)."""
    target = path or Path(__file__).with_name("data") / DATA_FILE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(build_prefix_table(), encoding="utf-8")
    return target


# --- masking and batch parsing -------------------------------------------------------------------


def mask(number: str) -> str:
    """Mask the middle of a number: ``"13800138000"`` -> ``"138****8000"``.

    11 characters or more: first 3 and last 4 shown. Shorter: at most a quarter of the characters is
    shown at each end, so at least half is always masked (1-3 characters are masked completely).
    """
    n = len(number)
    if n >= 11:
        head, tail = 3, 4
    else:
        head = tail = n // 4
    return number[:head] + "*" * (n - head - tail) + number[n - tail :]


@dataclass(frozen=True, slots=True)
class ParsedNumbers:
    valid: list[str]  # normalised 11-digit numbers, unique, first-seen order
    invalid: list[str]  # entries that are not mainland mobile numbers, as given (stripped)
    duplicates: list[str]  # repeats of a valid number, as written (stripped), one entry per repeat


def parse_numbers(raw: Iterable[str]) -> ParsedNumbers:
    """Normalise and dedupe a batch of numbers, keeping first-seen order; blank entries are skipped."""
    valid: list[str] = []
    invalid: list[str] = []
    duplicates: list[str] = []
    seen: set[str] = set()
    match = _MOBILE_RE.fullmatch
    for item in raw:
        m = match(item)
        if m is None:
            item = item.strip()
            if not item:
                continue
            m = match(item.translate(_CLEAN))
            if m is None:
                invalid.append(item)
                continue
        number = m.group(1)
        if number in seen:
            duplicates.append(item.strip())  # as the customer wrote it, so they can find it in their list
        else:
            seen.add(number)
            valid.append(number)
    return ParsedNumbers(valid, invalid, duplicates)


if __name__ == "__main__":
    written = write_prefix_table()
    print(f"wrote {written}", file=sys.stderr)
