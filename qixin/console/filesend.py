"""The console's 文件发送 (file send) pages, on the file-job use case (services/filejobs.FileJobs).

- ``/send/file``: upload a CSV / XLSX / TXT file with the message options → the preview
  (``FileJobs.preview``: nothing stored, nothing billed) rendered with a 确认发送 button. The preview page
  carries the uploaded file back as a hidden field (base64), so the confirm step needs no server-side
  state: confirm → ``FileJobs.create`` (which reads and checks everything again) → the job page.
- ``/send/file/jobs/{id}``: the job's progress, refreshed by htmx every second from
  ``/send/file/jobs/{id}/progress`` (a fragment) until the job is final; 取消 → ``FileJobs.cancel``.

Only users whose role may send (``console.send``: owner, operator) open these pages; the use case checks
again. Routes only translate the form into ``JobOptions`` and render.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from fastapi.responses import RedirectResponse, Response

from qixin.console.web import Console, Ctx
from qixin.errors import CATALOGUE, QxError
from qixin.services.filejobs import FINAL, JobOptions

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

AREA = "console.send"
OPTION_FIELDS = ("signature", "type", "content", "template_id", "params", "params_columns", "number_column",
                 "send_at")  # fmt: skip
JOB_STATUS = {"running": "发送中", "done": "已完成", "failed": "失败", "cancelled": "已取消"}


def reason(code: str) -> str:
    """The Chinese name of a refusal code (the error catalogue's message)."""
    return CATALOGUE[code][1] if code in CATALOGUE else code


def _pairs(text: str, name: str) -> dict[str, str]:
    """``name=value`` lines as a mapping (a value may hold commas)."""
    out: dict[str, str] = {}
    for item in text.replace("\r", "").split("\n"):
        if not item.strip():
            continue
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise QxError("INVALID_REQUEST", f"{name}应写作 名称=值（每行一个）")
        out[k.strip()] = v.strip()
    return out


def options_of(ctx: Ctx) -> JobOptions:
    template_id = ctx.get("template_id") or None
    send_at: int | str | None = ctx.get("send_at") or None
    return JobOptions(
        signature=ctx.get("signature") or None, type=ctx.get("type") or "notification",
        content=None if template_id else (ctx.get("content") or None), template_id=template_id,
        params=_pairs(ctx.get("params"), "模板变量") if template_id else {},
        params_columns=_pairs(ctx.get("params_columns"), "按列填充的变量") if template_id else {},
        number_column=ctx.get("number_column") or None, send_at=send_at,
    )  # fmt: skip


def _upload(ctx: Ctx) -> tuple[bytes, str]:
    """The file of the upload step, or the one the preview page carried back (confirm step)."""
    if "file" in ctx.files:
        filename, data = ctx.files["file"]
        if not data:
            raise QxError("FILE_INVALID", "请选择要上传的号码文件")
        return data, filename or "numbers.txt"
    encoded = ctx.form.get("file_data", "")
    if not encoded:
        raise QxError("FILE_INVALID", "请选择要上传的号码文件")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise QxError("FILE_INVALID", "上传的文件已损坏，请重新上传") from e
    return data, ctx.get("filename") or "numbers.txt"


def file_pages(c: Console, p: Services) -> None:
    c.env.filters["reason"] = reason
    c.env.filters["job_status"] = lambda s: JOB_STATUS.get(s, s)

    async def form_page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        return "filesend.html", {
            "signatures": await p.signatures.listing(ctx.actor, status="approved"),
            "templates": await p.templates.listing(ctx.actor, status="approved"),
            "jobs": await p.filejobs.listing(ctx.actor, limit=10), "form": ctx.form,
        }  # fmt: skip

    async def submit(ctx: Ctx) -> Response:
        ctx.actor.require(AREA)
        data, filename = _upload(ctx)
        options = options_of(ctx)
        if ctx.get("action") == "confirm":
            job = await p.filejobs.create(ctx.actor, None, data, filename, options)
            return RedirectResponse(f"/send/file/jobs/{job['job_id']}", status_code=303)
        preview = await p.filejobs.preview(ctx.actor, None, data, filename, options)
        hidden = {k: ctx.get(k) for k in OPTION_FIELDS}
        return c.render(ctx, "filesend_preview.html", preview=preview, hidden=hidden, filename=filename,
                        file_data=base64.b64encode(data).decode())  # fmt: skip

    c.page("/send/file", kind="customer", area=AREA, get=form_page, post=submit)

    async def job_page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        job = await p.filejobs.progress(ctx.actor, ctx.request.path_params["job_id"])
        return "filesend_job.html", {"job": job, "final": job["status"] in FINAL}

    async def job_fragment(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        job = await p.filejobs.progress(ctx.actor, ctx.request.path_params["job_id"])
        return "filesend_progress.html", {"job": job, "final": job["status"] in FINAL}

    async def cancel(ctx: Ctx) -> Response:
        job = await p.filejobs.cancel(ctx.actor, ctx.request.path_params["job_id"])
        return RedirectResponse(f"/send/file/jobs/{job['job_id']}", status_code=303)

    c.page("/send/file/jobs/{job_id}", kind="customer", area=AREA, get=job_page)
    c.page("/send/file/jobs/{job_id}/progress", kind="customer", area=AREA, get=job_fragment)
    c.page("/send/file/jobs/{job_id}/cancel", kind="customer", area=AREA, get=job_page, post=cancel)
