"""Links in message content and the per-account link policy.

Rule LINK_POLICY — each account has a :data:`LinkPolicy`:

- ``"allowed"``: any link may be sent;
- ``"allowlist"``: only links whose host is one of the account's allowed domains or a subdomain of
  one (``m.shop.example.cn`` is allowed by ``example.cn``; ``badexample.cn`` is not);
- ``"refused"``: no link at all.

``check_links(text, policy, allowed_domains)`` returns the offending links in order of appearance.

Rule LINK_EXTRACTION — ``extract_links(text)`` finds:

- URLs with a scheme: ``http://…``, ``https://…`` (any host, IPv4 addresses included);
- ``www.``-prefixed hosts: ``www.example.com/path``;
- bare domains ending in a known top-level domain, with optional port and path: ``abc.cn/xyz``,
  short links ``t.cn/A6x``, ``dwz.cn/x``, ``bit.ly/x``; bare IPv4 addresses followed by a port or path.

Before extraction, full-width ASCII forms are folded (``ｗｗｗ．ａｂｃ．ｃｏｍ``) and the dot
substitutes ``点 。 ｡ ．`` written between an ASCII letter or digit and a letter (``abc点com``,
``abc。cn``) are read as dots; returned links are in this folded spelling.  E-mail addresses are not
links.  Bare words like ``3.14`` or ``v1.2`` are not links because ``14`` and ``2`` are no TLDs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Literal

__all__ = ["KNOWN_TLDS", "LINK_POLICIES", "LinkPolicy", "check_links", "domain_of", "extract_links"]

LinkPolicy = Literal["allowed", "allowlist", "refused"]
LINK_POLICIES: Final[frozenset[str]] = frozenset({"allowed", "allowlist", "refused"})

_TLD_LIST = (
    "cn com net org gov edu mil int info biz name pro mobi asia tel travel jobs cc tv me io co ly gl "
    "gd im la so to ws fm am ai gg in us uk eu de fr jp kr hk tw mo sg my top xyz vip club site "
    "online shop store tech app dev ltd wang ren link live fun icu work cloud ink space website "
    "press news group team life world today email run red pub pw win bid loan men date"
)
KNOWN_TLDS: Final[frozenset[str]] = frozenset(_TLD_LIST.split(" "))

_WIDTH_TABLE: Final = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_DOT_WORDS: Final = re.compile(r"(?<=[A-Za-z0-9])[ \t]*[点。｡．][ \t]*(?=[A-Za-z])")

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PATH = r"(?:[/?#][A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*)?"
_PORT = r"(?::\d{1,5})?"
_LINK: Final = re.compile(
    r"(?<![A-Za-z0-9@.\-_])(?:"
    r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"
    rf"|www\.(?:{_LABEL}\.)*{_LABEL}{_PORT}{_PATH}"
    rf"|(?:{_LABEL}\.)+(?P<tld>[A-Za-z]{{2,10}}){_PORT}(?![A-Za-z0-9\-@]){_PATH}"
    rf"|(?:\d{{1,3}}\.){{3}}\d{{1,3}}(?=[:/]){_PORT}{_PATH}"
    r")",
    re.IGNORECASE,
)
# Every link has one of: a scheme, "label.tld" (letter after the dot), or a dotted IPv4 before ":"/"/".
_ALNUM_W = "A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
_ALPHA_W = "A-Za-z\uff21-\uff3a\uff41-\uff5a"
_MAYBE_LINK: Final = re.compile(
    rf"[{_ALNUM_W}][ \t]*[.。｡．点][ \t]*[{_ALPHA_W}]|[:：]//|[0-9]{{1,3}}\.[0-9]{{1,3}}\.[0-9]{{1,3}}\.[0-9]"
)
_HOST: Final = re.compile(r"^(?:[a-z][a-z0-9+.\-]*://)?(?:[^/@?#]*@)?([^/:?#]*)", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:!?)]'\""


def _fold(text: str) -> str:
    return _DOT_WORDS.sub(".", text.translate(_WIDTH_TABLE))


def extract_links(text: str) -> list[str]:
    """Links found in ``text`` (see the module docstring), in order of appearance."""
    if _MAYBE_LINK.search(text) is None:  # cheap necessary condition; most messages stop here
        return []
    folded = _fold(text)
    if "." not in folded:
        return []
    links: list[str] = []
    for match in _LINK.finditer(folded):
        tld = match.group("tld")
        if tld is not None and tld.lower() not in KNOWN_TLDS:
            continue
        link = match.group(0).rstrip(_TRAILING_PUNCT)
        if link:
            links.append(link)
    return links


def domain_of(link: str) -> str:
    """The lower-case host of a link: ``https://M.Example.cn:8080/x`` → ``m.example.cn``."""
    match = _HOST.match(link)
    host = match.group(1) if match else link
    return host.lower().rstrip(".")


def _is_allowed(host: str, allowed: Iterable[str]) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in allowed)


def check_links(text: str, policy: LinkPolicy | str, allowed_domains: Iterable[str] = ()) -> list[str]:
    """Links of ``text`` that ``policy`` does not permit (empty when all are permitted)."""
    if policy == "allowed":
        return []
    if policy not in LINK_POLICIES:
        raise ValueError(f"unknown link policy {policy!r}; expected one of {sorted(LINK_POLICIES)}")
    links = extract_links(text)
    if not links or policy == "refused":
        return links
    allowed = [d.strip().lower().lstrip(".").rstrip(".") for d in allowed_domains]
    allowed = [d for d in allowed if d]
    return [link for link in links if not _is_allowed(domain_of(link), allowed)]
