"""Shared vocabulary of the compliance rules: message types, the ``Violation`` record, stable codes.

Every rule in this package reports a refusal as a :class:`Violation` whose ``code`` is one of the
constants below.  The codes are part of the public API (they reach customers through the error
catalogue), so they never change meaning; ``message_zh`` is the customer-facing Chinese text and
``detail`` carries machine-readable specifics (the word, the category, the character, the link …).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "CONTENT_FORBIDDEN",
    "CONTENT_SPECIAL_CHAR",
    "LINK_FORBIDDEN",
    "MARKETING",
    "MESSAGE_TYPES",
    "NOTIFICATION",
    "SIGNATURE_NAME_INVALID",
    "TEMPLATE_CATEGORY_INVALID",
    "TEMPLATE_CODE_KEYWORD_MISSING",
    "TEMPLATE_CODE_VAR_COUNT",
    "TEMPLATE_PARAM_INVALID",
    "TEMPLATE_PARAM_MISSING",
    "TEMPLATE_PARAM_UNKNOWN",
    "TEMPLATE_SYNTAX",
    "TEMPLATE_TOO_LONG",
    "TEMPLATE_VAR_TYPE_INVALID",
    "TEMPLATE_VAR_UNDECLARED",
    "TEMPLATE_VAR_UNUSED",
    "UNSUBSCRIBE_MISSING",
    "VERIFICATION",
    "MessageType",
    "Violation",
    "check_message_type",
]

MessageType = Literal["verification", "notification", "marketing"]
VERIFICATION: Final = "verification"
NOTIFICATION: Final = "notification"
MARKETING: Final = "marketing"
MESSAGE_TYPES: Final[frozenset[str]] = frozenset({VERIFICATION, NOTIFICATION, MARKETING})

# Content checks (checker.py)
CONTENT_FORBIDDEN: Final = "CONTENT_FORBIDDEN"
CONTENT_SPECIAL_CHAR: Final = "CONTENT_SPECIAL_CHAR"
UNSUBSCRIBE_MISSING: Final = "UNSUBSCRIBE_MISSING"
LINK_FORBIDDEN: Final = "LINK_FORBIDDEN"

# Templates and signatures (templates.py)
TEMPLATE_SYNTAX: Final = "TEMPLATE_SYNTAX"
TEMPLATE_TOO_LONG: Final = "TEMPLATE_TOO_LONG"
TEMPLATE_CATEGORY_INVALID: Final = "TEMPLATE_CATEGORY_INVALID"
TEMPLATE_VAR_UNDECLARED: Final = "TEMPLATE_VAR_UNDECLARED"
TEMPLATE_VAR_UNUSED: Final = "TEMPLATE_VAR_UNUSED"
TEMPLATE_VAR_TYPE_INVALID: Final = "TEMPLATE_VAR_TYPE_INVALID"
TEMPLATE_CODE_KEYWORD_MISSING: Final = "TEMPLATE_CODE_KEYWORD_MISSING"
TEMPLATE_CODE_VAR_COUNT: Final = "TEMPLATE_CODE_VAR_COUNT"
TEMPLATE_PARAM_MISSING: Final = "TEMPLATE_PARAM_MISSING"
TEMPLATE_PARAM_INVALID: Final = "TEMPLATE_PARAM_INVALID"
TEMPLATE_PARAM_UNKNOWN: Final = "TEMPLATE_PARAM_UNKNOWN"
SIGNATURE_NAME_INVALID: Final = "SIGNATURE_NAME_INVALID"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: stable ``code``, Chinese ``message_zh`` for the customer, ``detail`` data."""

    code: str
    message_zh: str
    detail: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


def check_message_type(msg_type: str) -> MessageType:
    """Return ``msg_type`` if it is one of :data:`MESSAGE_TYPES`, else raise ``ValueError``."""
    if msg_type == VERIFICATION:
        return VERIFICATION
    if msg_type == NOTIFICATION:
        return NOTIFICATION
    if msg_type == MARKETING:
        return MARKETING
    raise ValueError(f"unknown message type {msg_type!r}; expected one of {sorted(MESSAGE_TYPES)}")
