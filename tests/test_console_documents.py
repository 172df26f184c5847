"""Qualification documents from the console over real HTTP: a customer applies for a signature with
documents (PDF / PNG, checked by content) and adds one later; a refused upload (not PDF/JPEG/PNG, another
account's signature, a viewer) leaves nothing behind — no signature, no row, no file; the reviewer sees the
documents in the signature review queue and downloads them (staff reviewers only, each download audited)."""

from __future__ import annotations

import re
from pathlib import Path

from console_helpers import PASSWORD
from test_console_pages import CSRF_RE, login

from qixin.services.actor import Actor

PDF = b"%PDF-1.4\n% qixin licence\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def token(text: str) -> str:
    m = CSRF_RE.search(text)
    assert m, text[:300]
    return m[1]


def stored_files(data_dir: Path) -> list[Path]:
    root = Path(data_dir) / "documents"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_signature_documents_upload_review_and_download(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account()
    other = running.account(name="另一家")
    users = running.platform.console_users
    data_dir = running.platform.settings.data_dir
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900005001", "owner", PASSWORD)
    await users.create_user(Actor.cli(), api.account_id, "只读", "13900005002", "viewer", PASSWORD)
    await users.create_user(Actor.cli(), other.account_id, "别家", "13900005003", "owner", PASSWORD)
    await users.create_staff(Actor.cli(), "审核员", "reviewer", "13900005004", PASSWORD)
    await users.create_staff(Actor.cli(), "运维", "ops", "13900005005", PASSWORD)
    owner = await login(running, "13900005001")
    viewer = await login(running, "13900005002")
    stranger = await login(running, "13900005003")
    reviewer = await login(running, "13900005004")
    ops = await login(running, "13900005005")
    try:
        page = await owner.get("/signatures")
        t = token(page.text)
        assert 'enctype="multipart/form-data"' in page.text
        # an invalid document: refused before anything is written (no signature, no file)
        r = await owner.post("/signatures", data={"csrf": t, "what": "signature", "name": "坏文件", "purpose": "x"},
                             files={"document1": ("licence.pdf", b"MZ not a pdf", "application/pdf")})  # fmt: skip
        assert r.status_code == 400 and "只接受 PDF、JPEG、PNG 文件" in r.text
        assert "坏文件" not in (await owner.get("/signatures")).text and stored_files(data_dir) == []
        # apply with two documents (the third input left empty)
        files = {"document1": ("营业执照.pdf", PDF, "application/pdf"), "document2": ("商标.png", PNG, "image/png"),
                 "document3": ("", b"", "application/octet-stream")}  # fmt: skip
        r = await owner.post("/signatures", data={"csrf": t, "what": "signature", "name": "好文件",
                                                  "purpose": "会员通知"}, files=files)  # fmt: skip
        assert r.status_code == 200 and "签名「好文件」已提交审核，附资质文件 2 份" in r.text, r.text[:800]
        assert len(stored_files(data_dir)) == 2
        sig = next(s for s in await running.platform.signatures.listing(Actor.cli()) if s["name"] == "好文件")
        # another account's signature: NOT_FOUND, no file written
        st = token((await stranger.get("/signatures")).text)
        jpeg = b"\xff\xd8\xff\xe0" + b"stranger" * 8
        r = await stranger.post("/signatures", data={"csrf": st, "what": "document", "signature_id": str(sig["id"])},
                                files={"document1": ("x.jpg", jpeg, "image/jpeg")})  # fmt: skip
        assert r.status_code == 400 and "签名不存在" in r.text
        assert len(stored_files(data_dir)) == 2
        # a viewer cannot upload (refused on the server; no form shown)
        vpage = await viewer.get("/signatures")
        assert "add-document" not in vpage.text
        r = await viewer.post("/signatures", data={"csrf": token(vpage.text), "what": "document",
                                                   "signature_id": str(sig["id"])},
                              files={"document1": ("x.jpg", jpeg, "image/jpeg")})  # fmt: skip
        assert r.status_code == 400 and "无权" in r.text and len(stored_files(data_dir)) == 2
        # the owner adds a third later
        r = await owner.post("/signatures", data={"csrf": t, "what": "document", "signature_id": str(sig["id"])},
                             files={"document1": ("授权书.jpg", jpeg, "image/jpeg")})  # fmt: skip
        assert r.status_code == 200 and "已上传资质文件 1 份" in r.text and len(stored_files(data_dir)) == 3
        # the reviewer's queue lists the purpose and the three documents with download links
        queue = await reviewer.get("/staff/review")
        row = re.search(rf'<tr id="signature-{sig["id"]}">.*?</tr>', queue.text, re.S)[0]  # type: ignore[index]
        assert "会员通知" in row and "营业执照.pdf" in row and "商标.png" in row and "授权书.jpg" in row
        doc_ids = [int(x) for x in re.findall(r'href="/staff/documents/(\d+)"', row)]
        assert len(doc_ids) == 3
        r = await reviewer.get(f"/staff/documents/{doc_ids[0]}")
        assert r.status_code == 200 and r.content == PDF and r.headers["content-type"] == "application/pdf"
        assert "attachment" in r.headers["content-disposition"] and r.headers["x-content-type-options"] == "nosniff"
        assert (await reviewer.get("/staff/documents/999999")).status_code == 404
        # ops and customers may not download (refused server-side)
        assert (await ops.get(f"/staff/documents/{doc_ids[0]}")).status_code == 403
        assert (await owner.get(f"/staff/documents/{doc_ids[0]}")).status_code == 403
        assert (await ops.get("/staff/review")).status_code == 403
        # each download is in the audit log, by the reviewer
        audit = await running.platform.staff_users.audit(Actor.cli(), 50, None, "signature.document_read")
        assert len(audit) == 1 and audit[0]["target"] == f"document:{doc_ids[0]}" and audit[0]["actor_type"] == "staff"
        uploads = await running.platform.staff_users.audit(Actor.cli(), 50, None, "signature.document")
        assert len(uploads) == 3
    finally:
        for h in (owner, viewer, stranger, reviewer, ops):
            await h.aclose()
