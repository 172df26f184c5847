"""The customer documentation is checked against the code, so it cannot drift silently.

- docs/errors.md lists exactly the codes of ``qixin.errors.CATALOGUE``, with their HTTP status and message;
- the worked signing examples of docs/api.md are what ``qixin.domain.signing`` computes;
- the OpenAPI document lists the customer endpoints docs/api.md describes;
- examples/send.py and examples/webhook_receiver.py (stand-alone, no qixin import) sign like qixin.

After changing the catalogue, regenerate the table of docs/errors.md (the "when it happens" text of
existing codes is kept; a new code gets a TODO, which the test refuses until it is written):

    .venv/bin/python tests/test_docs.py
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qixin.domain import signing
from qixin.errors import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent
ERRORS_MD = ROOT / "docs" / "errors.md"
API_MD = ROOT / "docs" / "api.md"
EXAMPLES = ROOT / "examples"

TABLE_START, TABLE_END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"
OUTSIDE_START, OUTSIDE_END = "<!-- outside-catalogue:start -->", "<!-- outside-catalogue:end -->"
TABLE_HEAD = "| code | HTTP | message (中文提示) | when it happens |\n|---|---|---|---|"
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| (\d{3}) \| (.*?) \| (.*) \|$")
TODO = "TODO: describe when this happens"


# --- docs/errors.md -------------------------------------------------------------------------------


def _between(text: str, start: str, end: str) -> str:
    assert text.count(start) == 1 and text.count(end) == 1, f"markers {start} / {end} must appear once"
    return text.split(start, 1)[1].split(end, 1)[0]


def documented_errors(text: str) -> dict[str, tuple[int, str, str]]:
    """code -> (HTTP status, message, when) from the catalogue table of docs/errors.md."""
    rows: dict[str, tuple[int, str, str]] = {}
    for line in _between(text, TABLE_START, TABLE_END).splitlines():
        m = ROW.match(line.strip())
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} is listed twice"
            rows[m.group(1)] = (int(m.group(2)), m.group(3), m.group(4).strip())
    return rows


def render_table(when: dict[str, str]) -> str:
    lines = [TABLE_HEAD]
    for code, (status, message) in CATALOGUE.items():
        lines.append(f"| `{code}` | {status} | {message} | {when.get(code) or TODO} |")
    return "\n".join(lines)


def regenerate_errors_md() -> None:
    text = ERRORS_MD.read_text(encoding="utf-8")
    when = {code: row[2] for code, row in documented_errors(text).items()}
    head, rest = text.split(TABLE_START, 1)
    tail = rest.split(TABLE_END, 1)[1]
    ERRORS_MD.write_text(f"{head}{TABLE_START}\n{render_table(when)}\n{TABLE_END}{tail}", encoding="utf-8")


def test_every_catalogue_code_is_documented_and_nothing_else() -> None:
    rows = documented_errors(ERRORS_MD.read_text(encoding="utf-8"))
    missing = sorted(set(CATALOGUE) - set(rows))
    extra = sorted(set(rows) - set(CATALOGUE))
    hint = "run `.venv/bin/python tests/test_docs.py` to regenerate the table"
    assert not missing, f"codes in CATALOGUE missing from docs/errors.md: {missing} ({hint})"
    assert not extra, f"codes in docs/errors.md that are not in CATALOGUE: {extra}"


def test_documented_status_message_and_when_match_the_catalogue() -> None:
    rows = documented_errors(ERRORS_MD.read_text(encoding="utf-8"))
    for code, (status, message) in CATALOGUE.items():
        if code not in rows:
            continue  # reported by the test above
        got_status, got_message, when = rows[code]
        assert (got_status, got_message) == (status, message), f"{code}: docs/errors.md differs from CATALOGUE"
        assert when and when != TODO, f"{code}: write when it happens in docs/errors.md"


def test_codes_documented_as_outside_the_catalogue_really_are() -> None:
    """docs/errors.md names codes customers can get that the catalogue lacks; drop them once catalogued."""
    section = _between(ERRORS_MD.read_text(encoding="utf-8"), OUTSIDE_START, OUTSIDE_END)
    codes = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    assert not codes & set(CATALOGUE), f"now in CATALOGUE, remove from the note: {sorted(codes & set(CATALOGUE))}"


# --- docs/api.md: worked signing examples ---------------------------------------------------------


def signing_examples() -> dict[str, tuple[dict[str, str], str]]:
    """name -> (fields, canonical string) from the marked fenced blocks of docs/api.md."""
    text = API_MD.read_text(encoding="utf-8")
    blocks = dict(re.findall(r"<!-- signing-example:([\w:-]+) -->\s*```text\n(.*?)\n```", text, re.S))
    out = {}
    for name, block in blocks.items():
        if name.endswith(":canonical"):
            continue
        fields = {}
        for line in block.splitlines():
            m = re.match(r"^([a-z_0-9]+):(.*)$", line)
            assert m, f"signing example {name}: cannot read line {line!r}"
            fields[m.group(1)] = m.group(2).strip()
        assert f"{name}:canonical" in blocks, f"signing example {name} has no canonical block"
        out[name] = (fields, blocks[f"{name}:canonical"])
    return out


def test_docs_have_a_post_and_a_get_signing_example() -> None:
    examples = signing_examples()
    assert {"post", "get"} <= set(examples)
    assert examples["get"][0]["query"], "the GET example shows query canonicalisation"


@pytest.mark.parametrize("name", ["post", "get"])
def test_signing_example_matches_qixin_signing(name: str) -> None:
    f, canonical = signing_examples()[name]
    body = f["body"].encode()
    query = signing.canonical_query(parse_qsl(f["query"], keep_blank_values=True))
    assert query == f["canonical_query"]
    assert hashlib.sha256(body).hexdigest() == f["body_sha256"]
    assert canonical == signing.canonical_request(f["method"], f["path"], query, f["timestamp"], f["nonce"], body)
    expected = signing.sign(f["app_secret"], f["method"], f["path"], query, f["timestamp"], f["nonce"], body)
    assert f["signature"] == expected
    headers = signing.signed_headers(
        f["app_key"],
        f["app_secret"],
        f["method"],
        f["path"],
        body,
        parse_qsl(f["query"], keep_blank_values=True),
        timestamp=int(f["timestamp"]),
        nonce=f["nonce"],
    )
    assert headers[signing.HEADER_SIGNATURE] == f["signature"]
    args = (f["method"], f["path"], query, f["timestamp"], f["nonce"], body)
    assert signing.verify(f["app_secret"], f["signature"], *args)
    assert load_example("send").sign(f["app_secret"], *args) == f["signature"]


# --- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_lists_the_customer_endpoints(tmp_path: Path) -> None:
    from qixin.api.app import create_api
    from qixin.app import build
    from qixin.settings import Settings

    platform = build(Settings(data_dir=tmp_path))
    try:
        spec = create_api(platform).openapi()
    finally:
        platform.db.close()
    paths = spec["paths"]
    for path, method in [
        ("/v1/sms", "post"),
        ("/v1/sms/{message_id}", "get"),
        ("/v1/batches/{batch_id}", "get"),
        ("/v1/account", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from /openapi.json"
        assert f"{method.upper()} {path.split('{')[0]}" in API_MD.read_text(encoding="utf-8")
    send_schema = paths["/v1/sms"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    documented = API_MD.read_text(encoding="utf-8")
    for field in send_schema["properties"]:
        assert f"`{field}`" in documented, f"POST /v1/sms field {field} is not documented in docs/api.md"


# --- examples/ ------------------------------------------------------------------------------------


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py by path (the examples are not a package and import nothing from qixin)."""
    module_name = f"qixin_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["send", "webhook_receiver"])
def test_examples_import_nothing_from_qixin(name: str) -> None:
    source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(from|import)\s+qixin\b", source, re.M)


def test_example_client_signs_like_qixin_for_a_fixed_input() -> None:
    send = load_example("send")
    params = [("b", "2"), ("a", "x y"), ("tag", "企信"), ("a-b", "~1"), ("b", "10"), ("empty", "")]
    body = '{"to":"13800138000","content":"您的验证码是 123456","signature":"企信"}'.encode()
    args = ("POST", "/v1/sms", "1714531200", "f3a9c2e17b4d4e0a", body)
    assert send.canonical_query(params) == signing.canonical_query(params)
    query = signing.canonical_query(params)
    assert send.sign("secret-0123", args[0], args[1], query, *args[2:]) == signing.sign(
        "secret-0123", args[0], args[1], query, *args[2:]
    )


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(params=st.lists(st.tuples(_text, _text), max_size=5), secret=_text, body=st.binary(max_size=64))
def test_example_client_signs_like_qixin_for_any_input(params: list[tuple[str, str]], secret: str, body: bytes) -> None:
    send = load_example("send")
    query = signing.canonical_query(params)
    assert send.canonical_query(params) == query
    assert send.sign(secret, "get", "/v1/sms/1", query, "1", "nonce-12", body) == signing.sign(
        secret, "get", "/v1/sms/1", query, "1", "nonce-12", body
    )


def test_example_webhook_receiver_accepts_what_qixin_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The webhook worker signs with the callback URL's path and an empty query (services/webhooks.py)."""
    monkeypatch.setenv("QIXIN_APP_KEY", "qx0123456789abcdef")
    monkeypatch.setenv("QIXIN_APP_SECRET", "hook-secret")
    sys.modules.pop("qixin_example_webhook_receiver", None)
    receiver = load_example("webhook_receiver")
    body = b'{"events":[{"type":"receipt","id":"1","status":"delivered"}]}'
    signed = signing.signed_headers("qx0123456789abcdef", "hook-secret", "POST", "/hook", body)
    headers = {k.lower(): v for k, v in signed.items()}
    assert receiver.valid(headers, "/hook", body)
    assert not receiver.valid(headers, "/hook", body + b" ")
    assert not receiver.valid(headers, "/other", body)
    assert not receiver.valid({**headers, "x-qx-appkey": "qxsomeoneelse"}, "/hook", body)
    old = signing.signed_headers("qx0123456789abcdef", "hook-secret", "POST", "/hook", body, timestamp=1714531200)
    assert not receiver.valid({k.lower(): v for k, v in old.items()}, "/hook", body)
    sys.modules.pop("qixin_example_webhook_receiver", None)


if __name__ == "__main__":
    regenerate_errors_md()
    print(f"regenerated {ERRORS_MD.relative_to(ROOT)}")
