"""What a delivery receipt means: each protocol's stat and error codes as a status and a failure reason.

Rules:
- Status is one word of the platform vocabulary (docs/api.md). A receipt's status follows from its stat
  alone, the same way on every protocol: ``DELIVRD`` (and ``ACCEPTD``) → delivered; ``EXPIRED`` → expired;
  every other final stat → undelivered, ``REJECTD`` included (the carrier refused to deliver; the
  status ``rejected`` is kept for refusals by the platform). An unrecognised stat is undelivered.
  ``ENROUTE`` (SMPP message_state 1) is not final: connectors drop it, as they drop SGIP State 1.
- Reason groups failures the way operators read them: invalid or empty number (空号), switched off or
  suspended (关机/停机), blacklisted, frequency-limited, refused by the carrier (or its network failed),
  platform error, no receipt in time, other (a code no table knows). A delivery has no reason ("").
- One table per protocol family maps its codes to (status, reason); the tables are data, rendered into
  docs/status-codes.md (tests/test_docs.py keeps the two equal):
  - CMPP 2.0 and 3.0 have no error field: the failure is the 7-character Stat. A word (``UNDELIV`` …)
    or a gateway code ``XX:nnnn`` is looked up as written; a code not listed falls back to its
    prefix's default (``MA:`` gateway refusals → refused by the carrier), else other.
  - SGIP 1.2 reports a State and an ErrorCode; the connector writes State 0 as ``DELIVRD`` and State 2
    as ``UNDELIV`` with the ErrorCode as err, which gives the reason.
  - SMPP 3.4 and SMGP 3.0 write SMPP-style receipt text: the stat word gives status and reason; their
    3-digit err values are SMSC-specific and only kept.
- ``carrier_err`` has one form on every channel: ``""`` when there is no error (nothing, or zeros such
  as SMPP's ``000`` and SGIP's ErrorCode 0), a number as at least 3 digits (``"025"``), other text
  stripped; at most 16 characters. CMPP's is always ``""``.
- Platform-side outcomes have their table too (``classify_platform``): a submit the carrier refused,
  no route, the compliance refusals, and a receipt that never came (expired by the platform).
- Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "CMPP",
    "FAMILIES",
    "PLATFORM",
    "REASONS",
    "SGIP",
    "SMGP",
    "SMPP",
    "TABLES",
    "Entry",
    "Outcome",
    "classify",
    "classify_platform",
    "family",
    "is_final",
    "normalize_err",
    "reason_of",
    "status_of_stat",
]

# reason groups: code -> what operators call it (statistics group failures by these)
REASONS: dict[str, str] = {
    "invalid_number": "空号/无效号码",
    "unreachable": "关机/停机/不在服务区",
    "blacklisted": "黑名单/退订",
    "rate_limited": "频次限制",
    "carrier_refused": "运营商拒绝/网络故障",
    "platform_error": "平台错误",
    "no_receipt": "状态报告超时",
    "other": "其他/未知",
}

ERR_MAX = 16  # the width of messages.carrier_err


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # the platform vocabulary: delivered, undelivered, expired, failed, rejected, submitted
    reason: str  # a key of REASONS, "" when delivered (or not final)

    @property
    def final(self) -> bool:
        return self.status != "submitted"


@dataclass(frozen=True, slots=True)
class Entry:
    """A table row: the outcome of one code and what the code means (for the documentation)."""

    status: str
    reason: str
    meaning: str

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.status, self.reason)


def _e(status: str, reason: str, meaning: str) -> Entry:
    return Entry(status, reason, meaning)


# -- receipt stat words (SMPP 3.4 §5.2.28 message_state and Appendix B; the same words in CMPP and SMGP)
_WORDS: dict[str, Entry] = {
    "DELIVRD": _e("delivered", "", "delivered to the handset"),
    "ACCEPTD": _e("delivered", "", "accepted on the subscriber's behalf (final)"),
    "EXPIRED": _e("expired", "unreachable", "validity period passed (handset off or out of coverage for long)"),
    "UNDELIV": _e("undelivered", "unreachable", "undeliverable (subscriber suspended, barred …)"),
    "DELETED": _e("undelivered", "carrier_refused", "deleted by the SMSC"),
    "REJECTD": _e("undelivered", "carrier_refused", "rejected by the SMSC"),
    "UNKNOWN": _e("undelivered", "other", "state unknown"),
}
_ENROUTE = Entry("submitted", "", "on its way (SMPP message_state 1): not final, dropped")
# 携号转网: our simulators (and gateways configured so, see services/portability) report "PT:<CARRIER>"
_PORTED = _e("undelivered", "carrier_refused", "number ported to another carrier (携号转网), prefix match")

# -- CMPP gateway codes. MK/MI/MN/MB carry a GSM MAP error number (3GPP TS 29.002) after the prefix;
# MA/CB/HD codes are ISMG, SCP and gateway refusals as carriers' code lists give them. Gateways differ:
# a code listed here with the wrong meaning for a given gateway is fixed here, in one place.
_MAP: dict[int, tuple[str, str]] = {
    1: ("invalid_number", "MAP unknownSubscriber: no such number (空号)"),
    5: ("invalid_number", "MAP unidentifiedSubscriber"),
    6: ("unreachable", "MAP absentSubscriberSM: handset off or out of coverage (关机)"),
    9: ("invalid_number", "MAP illegalSubscriber"),
    11: ("unreachable", "MAP teleserviceNotProvisioned: no SMS service on the line"),
    12: ("unreachable", "MAP illegalEquipment"),
    13: ("unreachable", "MAP callBarred: barred, e.g. suspended for arrears (停机)"),
    21: ("carrier_refused", "MAP facilityNotSupported"),
    27: ("unreachable", "MAP absentSubscriber (关机)"),
    31: ("unreachable", "MAP subscriberBusyForMT-SMS"),
    32: ("unreachable", "MAP sm-DeliveryFailure: handset memory full or handset error"),
    33: ("unreachable", "MAP messageWaitingListFull"),
    34: ("carrier_refused", "MAP systemFailure"),
    35: ("carrier_refused", "MAP dataMissing"),
    36: ("carrier_refused", "MAP unexpectedDataValue"),
}
_MAP_PREFIXES = ("MK", "MI", "MN", "MB")
_CMPP_CODES: dict[str, Entry] = {
    "MA:0001": _e("undelivered", "blacklisted", "global blacklist (全局黑名单)"),
    "MA:0002": _e("undelivered", "carrier_refused", "content not allowed (内容非法)"),
    "MA:0003": _e("undelivered", "carrier_refused", "no onward route (无法找到下级路由)"),
    "MA:0005": _e("undelivered", "invalid_number", "destination number malformed (目的号码格式错误)"),
    "MA:0006": _e("undelivered", "carrier_refused", "refused by the system (系统拒绝)"),
    "MA:0012": _e("undelivered", "carrier_refused", "anti-phishing (防钓鱼)"),
    "MA:0021": _e("undelivered", "invalid_number", "number malformed (号码格式错误)"),
    "MA:0022": _e("undelivered", "rate_limited", "too many to this number within half an hour"),
    "MA:0023": _e("undelivered", "blacklisted", "customer blacklist (客户黑名单)"),
    "MA:0024": _e("undelivered", "carrier_refused", "content not registered (内容未报备)"),
    "MA:0027": _e("undelivered", "blacklisted", "blacklist (黑名单)"),
    "MA:0033": _e("undelivered", "carrier_refused", "blocked for the region (地区拦截)"),
    "MA:0036": _e("undelivered", "carrier_refused", "refused by the system (系统驳回)"),
    "HD:0001": _e("undelivered", "blacklisted", "China Mobile blacklist (移动黑名单)"),
    "CB:0001": _e("undelivered", "invalid_number", "SCP: not a prepaid subscriber, number invalid or empty"),
    "CB:0007": _e("undelivered", "carrier_refused", "SCP: subscriber balance too low (余额不足)"),
    "CB:0053": _e("undelivered", "invalid_number", "SCP: subscriber does not exist (空号)"),
}
for _p in _MAP_PREFIXES:
    for _n, (_reason, _meaning) in _MAP.items():
        _CMPP_CODES[f"{_p}:{_n:04d}"] = _e("undelivered", _reason, _meaning)

# the default of a code whose prefix is known but the code is not listed
_CMPP_PREFIX_DEFAULTS: dict[str, Entry] = {
    "MA:": _e("undelivered", "carrier_refused", "other ISMG refusals"),
    "CB:": _e("undelivered", "carrier_refused", "other SCP refusals"),
    "HD:": _e("undelivered", "blacklisted", "other gateway blacklist codes"),
    "PT:": _PORTED,
}

# -- SGIP 1.2 Report ErrorCode (State 2), the numbering of SGIP's Result codes
_SGIP_CODES: dict[int, Entry] = {
    1: _e("undelivered", "carrier_refused", "illegal login"),
    5: _e("undelivered", "carrier_refused", "bad parameter format"),
    6: _e("undelivered", "invalid_number", "illegal phone number"),
    7: _e("undelivered", "carrier_refused", "bad message id"),
    8: _e("undelivered", "carrier_refused", "bad message length"),
    9: _e("undelivered", "carrier_refused", "illegal sequence number"),
    10: _e("undelivered", "carrier_refused", "illegal GNS operation"),
    11: _e("undelivered", "rate_limited", "node busy"),
    21: _e("undelivered", "unreachable", "destination unreachable"),
    22: _e("undelivered", "carrier_refused", "routing error"),
    23: _e("undelivered", "carrier_refused", "no route"),
    24: _e("undelivered", "carrier_refused", "bad charge number"),
    25: _e("undelivered", "unreachable", "user cannot communicate (停机)"),
    26: _e("undelivered", "unreachable", "handset memory full"),
    27: _e("undelivered", "unreachable", "handset does not support SMS"),
    28: _e("undelivered", "unreachable", "handset receive error"),
    29: _e("undelivered", "invalid_number", "unknown user (空号)"),
    30: _e("undelivered", "carrier_refused", "no such function"),
    31: _e("undelivered", "unreachable", "illegal device"),
    32: _e("undelivered", "carrier_refused", "system failure"),
    33: _e("undelivered", "carrier_refused", "SMSC queue full"),
}
_SGIP_OTHER = _e("undelivered", "other", "an ErrorCode not listed")

_UNRECOGNISED = _e("undelivered", "other", "a stat no table knows")

# -- platform codes (messages.error_code, or a number's refusal)
PLATFORM: dict[str, Entry] = {
    "SUBMIT_REJECTED": _e("failed", "carrier_refused", "the channel refused the submit (refunded)"),
    "NO_ROUTE": _e("failed", "platform_error", "no channel could carry it (refunded)"),
    "BLACKLISTED": _e("rejected", "blacklisted", "number on a blacklist (compliance)"),
    "OPTED_OUT": _e("rejected", "blacklisted", "number unsubscribed (退订, compliance)"),
    "RATE_LIMITED": _e("rejected", "rate_limited", "too many to this number (compliance)"),
    "RECEIPT_TIMEOUT": _e("expired", "no_receipt", "no receipt in time: expired by the platform"),
}

# protocol (as channels name it) -> family of tables
FAMILIES: dict[str, str] = {
    "smpp": "smpp",
    "cmpp": "cmpp",
    "cmpp2": "cmpp",
    "cmpp3": "cmpp",
    "sgip": "sgip",
    "smgp": "smgp",
}

# the tables as documented: family -> ordered (code as written, Entry) rows
SMPP: dict[str, Entry] = {**_WORDS, "ENROUTE": _ENROUTE, "PT:…": _PORTED}
SMGP: dict[str, Entry] = {**_WORDS, "PT:…": _PORTED}
CMPP: dict[str, Entry] = {
    **_WORDS,
    **{k: e for k, e in _CMPP_CODES.items() if k[:2] not in _MAP_PREFIXES},
    **{f"{'/'.join(_MAP_PREFIXES)}:{n:04d}": _e("undelivered", r, m) for n, (r, m) in _MAP.items()},
    **{f"{p}…": e for p, e in _CMPP_PREFIX_DEFAULTS.items()},
}
SGIP: dict[str, Entry] = {
    "State 0": _e("delivered", "", 'delivered (written DELIVRD, err "")'),
    "State 1": _e("submitted", "", "waiting: not final, dropped"),
    **{f"State 2, ErrorCode {n}": e for n, e in _SGIP_CODES.items()},
    "State 2, other ErrorCode": _SGIP_OTHER,
}
TABLES: dict[str, dict[str, Entry]] = {"smpp": SMPP, "cmpp": CMPP, "sgip": SGIP, "smgp": SMGP}

_NUMBER = re.compile(r"\d+")
_CODE = re.compile(r"([A-Z]{2}:)")


def family(protocol: str) -> str:
    """The table family of a channel protocol name (``cmpp3`` → ``cmpp``); ValueError if unknown."""
    try:
        return FAMILIES[protocol.lower()]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; known: {sorted(FAMILIES)}") from None


def normalize_err(protocol: str, raw: str | int | None) -> str:
    """The one form of ``carrier_err``: "" for no error, a number as at least 3 digits, else the text
    stripped (CMPP: always "")."""
    if family(protocol) == "cmpp" or raw is None:
        return ""
    text = str(raw).strip()[:ERR_MAX].strip()
    if _NUMBER.fullmatch(text):
        n = int(text)
        return "" if n == 0 else f"{n:03d}"
    return text


def _word(stat: str) -> Entry | None:
    entry = _WORDS.get(stat)
    if entry is None and stat == "ENROUTE":
        return _ENROUTE
    if entry is None and stat.startswith("PT:"):
        return _PORTED
    return entry


def _entry(fam: str, stat: str, err: str) -> Entry:
    if fam == "sgip":
        if stat == "DELIVRD":
            return _WORDS["DELIVRD"]
        code = err.strip()
        return _SGIP_CODES.get(int(code), _SGIP_OTHER) if _NUMBER.fullmatch(code) else _SGIP_OTHER
    if fam == "cmpp":
        entry = _CMPP_CODES.get(stat)
        if entry is None and (m := _CODE.match(stat)):
            entry = _CMPP_PREFIX_DEFAULTS.get(m.group(1))
        if entry is not None:
            return entry
    return _word(stat) or _UNRECOGNISED


def classify(protocol: str, stat: str, err: str = "") -> Outcome:
    """The status and reason group of a receipt as a connector of ``protocol`` hands it on (stat upper
    case, err in its normal form)."""
    return _entry(family(protocol), (stat or "UNKNOWN").strip().upper(), err or "").outcome


def is_final(stat: str) -> bool:
    """Whether a receipt with this stat ends the part (``ENROUTE`` does not)."""
    return status_of_stat(stat) != "submitted"


@lru_cache(maxsize=1024)  # once per receipt, more than once in the dispatcher's flush; stats repeat a few words
def status_of_stat(stat: str) -> str:
    """The status of a receipt stat, the same on every protocol (``classify`` agrees; a test checks it)."""
    entry = _word((stat or "UNKNOWN").strip().upper())
    return entry.status if entry is not None else "undelivered"


def classify_platform(code: str) -> Outcome:
    """The status and reason group of a platform code (``error_code`` or a refusal code); KeyError if
    the code is not a delivery outcome."""
    return PLATFORM[code].outcome


FAILED_STATUSES = frozenset({"undelivered", "failed", "rejected", "expired"})


def reason_of(protocol: str | None, status: str, stat: str | None, err: str | None, error_code: str | None) -> str:
    """The reason group of a stored message: "" unless it failed; its platform error code first, else its
    carrier's receipt codes read with its channel's table (a channel since removed: by the stat word)."""
    if status not in FAILED_STATUSES:
        return ""
    if error_code:
        try:
            return classify_platform(error_code).reason
        except KeyError:
            return "platform_error"
    if not stat:
        return "other"
    if protocol and protocol.lower() in FAMILIES:
        return classify(protocol, stat, err or "").reason
    entry = _word(stat.strip().upper())
    return entry.outcome.reason if entry is not None else "other"
