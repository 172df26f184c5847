"""Signature applications: purpose and qualification documents (营业执照, 商标证书, 授权书 …).

Rules:
- Files are uploaded as JSON with base64 content (no multipart dependency) and stored under
  ``data_dir/documents/<account>/<sha256><ext>``: content-addressed, so a repeated upload costs nothing
  and a file is never overwritten with different bytes. The database row keeps the path relative to
  ``data_dir``, the original name, type, size and SHA-256.
- Accepted: PDF, JPEG, PNG, at most 5 MB each, checked by their leading bytes, not by the name.
- A document belongs to a signature of the uploading account: ownership is checked before the file is
  written (NOT_FOUND, nothing under ``documents/``) and again in the transaction that stores the row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qixin.errors import QxError
from qixin.store import compliance as q
from qixin.store.db import Tx, now_ms

MAX_BYTES = 5 * 1024 * 1024
KINDS = {b"%PDF-": (".pdf", "application/pdf"), b"\xff\xd8\xff": (".jpg", "image/jpeg"),
         b"\x89PNG\r\n\x1a\n": (".png", "image/png")}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stored:
    filename: str
    content_type: str
    size: int
    sha256: str
    path: str  # relative to data_dir


def check_content(content: bytes) -> tuple[str, str]:
    """(extension, content type) of an acceptable document; DOCUMENT_INVALID otherwise (nothing written)."""
    if not content:
        raise QxError("DOCUMENT_INVALID", "文件为空")
    if len(content) > MAX_BYTES:
        raise QxError("DOCUMENT_INVALID", f"文件超过 {MAX_BYTES // (1024 * 1024)} MB")
    kind = next((v for magic, v in KINDS.items() if content.startswith(magic)), None)
    if kind is None:
        raise QxError("DOCUMENT_INVALID", "只接受 PDF、JPEG、PNG 文件")
    return kind


def store_file(data_dir: Path, account_id: int, filename: str, content_type: str, content: bytes) -> Stored:
    kind = check_content(content)
    name = Path(filename.replace("\\", "/")).name[:200] or "document"
    digest = hashlib.sha256(content).hexdigest()
    rel = f"documents/{account_id}/{digest}{kind[0]}"
    target = Path(data_dir) / rel
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(target)
    return Stored(name, kind[1], len(content), digest, rel)


def check_owner(tx: Tx, account_id: int, signature_id: int) -> None:
    """NOT_FOUND unless ``signature_id`` is a signature of ``account_id`` (another account's looks absent)."""
    if not q.signature_of_account(tx, signature_id, account_id):
        raise QxError("NOT_FOUND", "签名不存在")


def add_document(tx: Tx, account_id: int, signature_id: int, stored: Stored) -> dict[str, Any]:
    check_owner(tx, account_id, signature_id)
    doc_id = q.insert_document(
        tx, account_id, signature_id, stored.filename, stored.content_type, stored.size, stored.sha256, stored.path,
        now_ms(),
    )  # fmt: skip
    return {"id": doc_id, "signature_id": signature_id, "filename": stored.filename, "size": stored.size,
            "sha256": stored.sha256, "content_type": stored.content_type}  # fmt: skip


def set_purpose(tx: Tx, account_id: int, signature_id: int, purpose: str) -> None:
    q.insert_signature_info(tx, signature_id, account_id, purpose, now_ms())


def signature_application(tx: Tx, signature_id: int) -> dict[str, Any]:
    sig = q.signature_row(tx, signature_id)
    if sig is None:
        raise QxError("NOT_FOUND", "签名不存在")
    purpose = q.signature_purpose(tx, signature_id)
    keys = ("id", "filename", "content_type", "size", "sha256", "created_at")
    docs = [dict(zip(keys, d, strict=True)) for d in q.documents_of_signature(tx, signature_id)]
    return {
        "id": int(sig[0]), "account_id": int(sig[1]), "name": sig[2], "status": sig[3], "reason": sig[4],
        "purpose": purpose or "", "documents": docs,
    }  # fmt: skip


def document(tx: Tx, document_id: int) -> dict[str, Any]:
    r = q.document_row(tx, document_id)
    if r is None:
        raise QxError("NOT_FOUND", "文件不存在")
    return {"id": int(r[0]), "filename": r[1], "content_type": r[2], "path": r[3]}


def read_file(data_dir: Path, rel: str) -> bytes:
    return (Path(data_dir) / rel).read_bytes()
