"""The one entry point for checking message content: ``ContentChecker.check_content``.

Rule CONTENT_CHECK — every message (free text, rendered template, batch content) passes, in one call:

- CONTENT_FORBIDDEN: no lexicon word in the normalised text (``lexicon.py``, ``normalize.py``); one
  violation per distinct word, naming the word and its category;
- CONTENT_SPECIAL_CHAR: no garbling special character (``characters.py``); one violation per
  distinct character or sequence, naming it;
- UNSUBSCRIBE_MISSING: marketing ends with an unsubscribe instruction (``unsubscribe.py``);
- LINK_FORBIDDEN: links obey the account's link policy (``links.py``); one violation per link.

The text is normalised and encoded by one ``str.translate`` and scanned once by the automaton,
whatever the size of the lexicon; links are only looked for when the policy restricts them.
An empty list means the content passes.
The checker is immutable; when staff publish a new lexicon version, build a new checker with
:meth:`ContentChecker.with_lexicon` and swap the reference.
"""

from __future__ import annotations

from collections.abc import Iterable

from qixin.domain.compliance.characters import forbidden_characters
from qixin.domain.compliance.lexicon import Lexicon, category_label
from qixin.domain.compliance.links import LinkPolicy, check_links, domain_of
from qixin.domain.compliance.model import (
    CONTENT_FORBIDDEN,
    CONTENT_SPECIAL_CHAR,
    LINK_FORBIDDEN,
    MARKETING,
    NOTIFICATION,
    Violation,
    check_message_type,
)
from qixin.domain.compliance.normalize import normalize
from qixin.domain.compliance.unsubscribe import (
    DEFAULT_FORMS,
    ends_with_form,
    normalized_forms,
    strip_trailing_signature,
    unsubscribe_missing,
)

__all__ = ["ContentChecker"]


class ContentChecker:
    """Checks content against a compiled :class:`Lexicon` and the character, unsubscribe and link rules."""

    __slots__ = ("_forms", "_forms_normalized", "_lexicon")

    def __init__(self, lexicon: Lexicon, *, unsubscribe_forms: Iterable[str] = DEFAULT_FORMS) -> None:
        self._lexicon = lexicon
        self._forms = tuple(unsubscribe_forms)
        self._forms_normalized = normalized_forms(self._forms)

    @property
    def lexicon(self) -> Lexicon:
        return self._lexicon

    @property
    def unsubscribe_forms(self) -> tuple[str, ...]:
        return self._forms

    def with_lexicon(self, lexicon: Lexicon) -> ContentChecker:
        """A checker identical to this one but for ``lexicon`` (e.g. a new version)."""
        return ContentChecker(lexicon, unsubscribe_forms=self._forms)

    def check_content(
        self,
        text: str,
        msg_type: str = NOTIFICATION,
        link_policy: LinkPolicy | str = "allowed",
        allowed_domains: Iterable[str] = (),
    ) -> list[Violation]:
        """All content violations of ``text`` sent as ``msg_type`` (empty: the content passes)."""
        check_message_type(msg_type)
        violations: list[Violation] = []
        hits = self._lexicon.check(text)
        if hits:
            reported: set[tuple[str, str]] = set()
            for hit in hits:
                key = (hit.word, hit.category)
                if key in reported:
                    continue
                reported.add(key)
                label = category_label(hit.category)
                violations.append(
                    Violation(
                        CONTENT_FORBIDDEN,
                        f"内容含有违禁词「{hit.word}」（{label}类），不允许发送",
                        {
                            "word": hit.word,
                            "category": hit.category,
                            "category_label": label,
                            "position": hit.position,
                        },
                    )
                )

        for item in forbidden_characters(text):
            detail: dict[str, object] = {"character": item}
            if len(item) == 1:
                detail["codepoint"] = f"U+{ord(item):04X}"
            violations.append(
                Violation(CONTENT_SPECIAL_CHAR, f"内容含有不支持的特殊字符「{item}」，请删除或替换后重试", detail)
            )

        if msg_type == MARKETING and not ends_with_form(
            normalize(strip_trailing_signature(text)), self._forms_normalized
        ):
            violations.append(unsubscribe_missing(self._forms))

        if link_policy != "allowed":
            for link in check_links(text, link_policy, allowed_domains):
                domain = domain_of(link)
                if link_policy == "refused":
                    message = f"内容不允许包含链接「{link}」"
                else:
                    message = f"链接「{link}」的域名「{domain}」不在报备的域名白名单内"
                violations.append(
                    Violation(LINK_FORBIDDEN, message, {"link": link, "domain": domain, "policy": link_policy})
                )
        return violations
