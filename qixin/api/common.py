"""Small helpers shared by the customer and admin routers."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import orjson
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qixin.errors import CATALOGUE, QxError
from qixin.store.db import unavailable


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def error_response(err: QxError) -> Response:
    response = json_response(err.to_dict(), err.status)
    wait_ms = err.detail.get("retry_after_ms")
    if isinstance(wait_ms, int):  # ACCOUNT_THROTTLED (services/flow.py): whole seconds, at least 1
        response.headers["Retry-After"] = str(max(1, -(-wait_ms // 1000)))
    return response


def unexpected_response(log: logging.Logger, exc: Exception) -> Response:
    """The answer to an exception that is not a QxError: SERVICE_UNAVAILABLE (503, ``Retry-After``) while
    the database cannot be reached — the request changed nothing that was not rolled back, and a send
    retried with the same ``idempotency_key`` is accepted at most once — and INTERNAL_ERROR (500, logged
    with its traceback) for anything else."""
    if unavailable(exc):
        log.warning("database unavailable: %s", type(exc).__name__)
        return error_response(QxError("SERVICE_UNAVAILABLE", retry_after_ms=1000))
    log.exception("unhandled error", exc_info=exc)
    return error_response(QxError("INTERNAL_ERROR"))


def parse_json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise QxError("INVALID_JSON") from e
    if not isinstance(data, dict):
        raise QxError("INVALID_JSON", "请求体必须是 JSON 对象")
    return data


def field(data: dict[str, Any], name: str, kind: type, required: bool = True, default: Any = None) -> Any:
    """A typed field of a JSON body, with a stable error naming it."""
    value = data.get(name, default)
    if value is None:
        if required:
            raise QxError("INVALID_REQUEST", f"缺少字段 {name}")
        return default
    if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise QxError("INVALID_REQUEST", f"字段 {name} 类型错误，应为 {kind.__name__}")
    return value


class ErrorBody(BaseModel):
    """Every refusal: a stable code from docs/errors.md and a Chinese message (some codes add fields)."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(description="稳定错误码，见 docs/errors.md")
    message: str = Field(description="中文错误说明")


ERROR_SCHEMA = ErrorBody.model_json_schema()


def error_responses(
    *codes: str, ok: type[BaseModel] | None = None, ok_status: int = 200
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: for each HTTP status, the catalogue codes it may answer with (and,
    with ``ok``, the model of the success answer for routes that build their response themselves).

    Use on every route, e.g. ``@router.post(..., responses=error_responses("NOT_FOUND", "FORBIDDEN"))``;
    INVALID_REQUEST, SERVICE_UNAVAILABLE and INTERNAL_ERROR are added to every route."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, "INVALID_REQUEST", "SERVICE_UNAVAILABLE", "INTERNAL_ERROR"):
        status, _ = CATALOGUE[code]  # KeyError: an undocumented code
        if code not in by_status.setdefault(status, []):
            by_status[status].append(code)
    out: dict[int | str, dict[str, Any]] = {ok_status: {"model": ok}} if ok is not None else {}
    return out | {
        status: {
            # a reference, not ``"model": ErrorBody``: FastAPI builds a validator per route and status for
            # a model (a third of the app's start-up); ``ERROR_SCHEMA`` is added to the components once
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            "description": "；".join(f"`{c}` {CATALOGUE[c][1]}" for c in names),
        }
        for status, names in sorted(by_status.items())
    }


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], body: bytes) -> M:
    """The JSON body as ``model``; INVALID_JSON / INVALID_REQUEST (naming the field) otherwise."""
    data = parse_json(body)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "请求体"
        raise QxError("INVALID_REQUEST", f"字段 {where} 不符合要求：{first.get('msg', '')}") from e


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(x, defs) for x in node]
    return node


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body (for routes that read the raw body,
    e.g. because it is signed); nested models are inlined (a ``#/$defs/…`` ref means nothing there)."""
    schema = model.model_json_schema()
    schema = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
