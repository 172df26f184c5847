"""Signature applications: purpose and qualification documents (营业执照, 商标证书, 授权书 …).

Rules:
- Files are uploaded as JSON with base64 content (no multipart dependency) and stored under
  ``data_dir/documents/<account>/<sha256><ext>``: content-addressed, so a repeated upload costs nothing
  and a file is never overwritten with different bytes. The database row keeps the path relative to
  ``data_dir``, the original name, type, size and SHA-256.
- Accepted: PDF, JPEG, PNG, at most 5 MB each, checked by their leading bytes, not by the name.
- A document belongs to a signature of the uploading account (NOT_FOUND otherwise, before writing).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qixin.errors import QxError
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


def store_file(data_dir: Path, account_id: int, filename: str, content_type: str, content: bytes) -> Stored:
    if not content:
        raise QxError("DOCUMENT_INVALID", "文件为空")
    if len(content) > MAX_BYTES:
        raise QxError("DOCUMENT_INVALID", f"文件超过 {MAX_BYTES // (1024 * 1024)} MB")
    kind = next((v for magic, v in KINDS.items() if content.startswith(magic)), None)
    if kind is None:
        raise QxError("DOCUMENT_INVALID", "只接受 PDF、JPEG、PNG 文件")
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


def add_document(tx: Tx, account_id: int, signature_id: int, stored: Stored) -> dict[str, Any]:
    if tx.one("SELECT 1 FROM signatures WHERE id = ? AND account_id = ?", (signature_id, account_id)) is None:
        raise QxError("NOT_FOUND", "签名不存在")
    row = tx.one(
        "INSERT INTO qualification_documents (account_id, signature_id, filename, content_type, size, sha256, path,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (account_id, signature_id, stored.filename, stored.content_type, stored.size, stored.sha256, stored.path,
         now_ms()),
    )  # fmt: skip
    return {"id": int(row[0]), "signature_id": signature_id, "filename": stored.filename, "size": stored.size,
            "sha256": stored.sha256, "content_type": stored.content_type}  # fmt: skip


def set_purpose(tx: Tx, account_id: int, signature_id: int, purpose: str) -> None:
    tx.execute(
        "INSERT INTO signature_info (signature_id, account_id, purpose, updated_at) VALUES (?, ?, ?, ?)",
        (signature_id, account_id, purpose, now_ms()),
    )


def signature_application(tx: Tx, signature_id: int) -> dict[str, Any]:
    sig = tx.one("SELECT id, account_id, name, status, reason FROM signatures WHERE id = ?", (signature_id,))
    if sig is None:
        raise QxError("NOT_FOUND", "签名不存在")
    info = tx.one("SELECT purpose FROM signature_info WHERE signature_id = ?", (signature_id,))
    docs = tx.all(
        "SELECT id, filename, content_type, size, sha256, created_at FROM qualification_documents"
        " WHERE signature_id = ? ORDER BY id",
        (signature_id,),
    )
    keys = ("id", "filename", "content_type", "size", "sha256", "created_at")
    return {
        "id": int(sig[0]), "account_id": int(sig[1]), "name": sig[2], "status": sig[3], "reason": sig[4],
        "purpose": info[0] if info else "", "documents": [dict(zip(keys, d, strict=True)) for d in docs],
    }  # fmt: skip


def document(tx: Tx, document_id: int) -> dict[str, Any]:
    r = tx.one("SELECT id, filename, content_type, path FROM qualification_documents WHERE id = ?", (document_id,))
    if r is None:
        raise QxError("NOT_FOUND", "文件不存在")
    return {"id": int(r[0]), "filename": r[1], "content_type": r[2], "path": r[3]}


def read_file(data_dir: Path, rel: str) -> bytes:
    return (Path(data_dir) / rel).read_bytes()
