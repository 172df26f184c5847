"""Compliance rules (REQUIREMENTS R3, issue 4): pure functions and value objects, no I/O.

Where to find each rule:

- NORMALIZE_FOR_MATCHING ............ normalize.py      ``normalize``
- FORBIDDEN_WORDS, ALLOW_LIST ....... lexicon.py        ``Lexicon``, ``CATEGORIES``
- default words and allow-list ...... default_lexicon.py ``default_lexicon``
- SPECIAL_CHARACTERS ................ characters.py     ``forbidden_characters``
- UNSUBSCRIBE_INSTRUCTION ........... unsubscribe.py    ``has_unsubscribe_instruction``
- LINK_POLICY, LINK_EXTRACTION ...... links.py          ``check_links``, ``extract_links``
- SENDING_WINDOW .................... window.py         ``next_allowed_send``
- NUMBER_RANGE ...................... ranges.py         ``find_number_ranges``
- TEMPLATE_*, SIGNATURE_NAME ........ templates.py      ``render``, ``review_template``,
                                                         ``validate_signature_name``
- CONTENT_CHECK (one entry point) ... checker.py        ``ContentChecker.check_content``
- codes, ``Violation``, message types model.py
"""

from qixin.domain.compliance.characters import forbidden_characters
from qixin.domain.compliance.checker import ContentChecker
from qixin.domain.compliance.default_lexicon import (
    DEFAULT_ALLOW,
    DEFAULT_WORDS,
    default_entries,
    default_lexicon,
)
from qixin.domain.compliance.lexicon import CATEGORIES, Hit, Lexicon, LexiconEntry, category_label
from qixin.domain.compliance.links import LINK_POLICIES, LinkPolicy, check_links, domain_of, extract_links
from qixin.domain.compliance.model import (
    CONTENT_FORBIDDEN,
    CONTENT_SPECIAL_CHAR,
    LINK_FORBIDDEN,
    MARKETING,
    MESSAGE_TYPES,
    NOTIFICATION,
    SIGNATURE_NAME_INVALID,
    TEMPLATE_CATEGORY_INVALID,
    TEMPLATE_CODE_KEYWORD_MISSING,
    TEMPLATE_CODE_VAR_COUNT,
    TEMPLATE_PARAM_INVALID,
    TEMPLATE_PARAM_MISSING,
    TEMPLATE_PARAM_UNKNOWN,
    TEMPLATE_SYNTAX,
    TEMPLATE_TOO_LONG,
    TEMPLATE_VAR_TYPE_INVALID,
    TEMPLATE_VAR_UNDECLARED,
    TEMPLATE_VAR_UNUSED,
    UNSUBSCRIBE_MISSING,
    VERIFICATION,
    MessageType,
    Violation,
)
from qixin.domain.compliance.normalize import normalize
from qixin.domain.compliance.ranges import DEFAULT_MAX_RUN, find_number_ranges, longest_consecutive_run
from qixin.domain.compliance.templates import (
    TemplateError,
    Var,
    VarSpec,
    parse_template,
    render,
    review_template,
    validate_signature_name,
)
from qixin.domain.compliance.unsubscribe import DEFAULT_FORMS, has_unsubscribe_instruction
from qixin.domain.compliance.window import (
    GENERAL_WINDOW,
    MARKETING_WINDOW,
    SendWindow,
    is_send_allowed,
    next_allowed_send,
)

__all__ = [
    "CATEGORIES",
    "CONTENT_FORBIDDEN",
    "CONTENT_SPECIAL_CHAR",
    "DEFAULT_ALLOW",
    "DEFAULT_FORMS",
    "DEFAULT_MAX_RUN",
    "DEFAULT_WORDS",
    "GENERAL_WINDOW",
    "LINK_FORBIDDEN",
    "LINK_POLICIES",
    "MARKETING",
    "MARKETING_WINDOW",
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
    "ContentChecker",
    "Hit",
    "Lexicon",
    "LexiconEntry",
    "LinkPolicy",
    "MessageType",
    "SendWindow",
    "TemplateError",
    "Var",
    "VarSpec",
    "Violation",
    "category_label",
    "check_links",
    "default_entries",
    "default_lexicon",
    "domain_of",
    "extract_links",
    "find_number_ranges",
    "forbidden_characters",
    "has_unsubscribe_instruction",
    "is_send_allowed",
    "longest_consecutive_run",
    "next_allowed_send",
    "normalize",
    "parse_template",
    "render",
    "review_template",
    "validate_signature_name",
]
