"""The relational schema (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Rules:
- Money columns end in ``_li`` and hold integer 厘 (0.001 yuan). Never floats.
- Time columns end in ``_at`` and hold integer milliseconds since the Unix epoch, UTC.
- ``dispatch_queue`` is the hot work queue (small: rows waiting to be submitted); ``messages`` is the
  archive (large, append-mostly). The dispatcher never scans ``messages``.
- ``ledger`` rows are never updated or deleted; ``accounts.balance_li`` always equals the sum of the
  account's ledger amounts (checked by tests and by ``qixin billing verify`` later).
- A batch that sends one content to many numbers stores the content once, on the batch; messages with
  their own content (templates with per-number variables) carry it in ``messages.content``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),  # active | frozen
    Column("balance_li", BigInteger, nullable=False, server_default="0"),
    Column("price_li", BigInteger, nullable=False),  # per billed part
    Column("allow_free_text", Boolean, nullable=False, server_default="1"),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("app_key", String(64), nullable=False, unique=True),
    Column("app_secret", String(128), nullable=False),
    Column("callback_url", Text, nullable=True),
    Column("ip_allowlist", Text, nullable=True),  # comma-separated IPs / CIDRs; empty = any
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_at", BigInteger, nullable=False),
)

signatures = Table(
    "signatures",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(32), nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),  # pending|approved|rejected
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "name", name="uq_signatures_account_name"),
)

templates = Table(
    "templates",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("category", String(16), nullable=False),  # verification|notification|marketing
    Column("content", Text, nullable=False),
    Column("variables", Text, nullable=False, server_default="{}"),  # JSON: name -> type spec
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("api_key_id", BigInteger, nullable=True),  # whose callback URL receives the receipts
    Column("type", String(16), nullable=False),
    Column("signature", String(32), nullable=False),
    Column("template_id", BigInteger, nullable=True),
    Column("content", Text, nullable=True),  # shared content, when every message has the same text
    Column("total", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("fee_li", BigInteger, nullable=False),
    Column("out_id", String(64), nullable=True),
    Column("idempotency_key", String(128), nullable=True),
    Column("request_hash", String(64), nullable=True),  # sha256 of the request body, for idempotency
    Column("response", Text, nullable=True),  # the answer given, replayed for a repeated idempotency key
    Column("created_at", BigInteger, nullable=False),
    Column("send_at", BigInteger, nullable=True),
    UniqueConstraint("account_id", "idempotency_key", name="uq_batches_idempotency"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("batch_id", BigInteger, nullable=False, index=True),
    Column("account_id", BigInteger, nullable=False),
    Column("number", String(32), nullable=False),
    Column("carrier", String(8), nullable=False),
    Column("province", String(16), nullable=False, server_default=""),
    Column("content", Text, nullable=True),  # NULL: the batch's content
    Column("type", String(16), nullable=False),
    Column("parts", SmallInteger, nullable=False),
    Column("fee_li", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("out_id", String(64), nullable=True),
    Column("channel", String(64), nullable=True),
    Column("receipts_pending", SmallInteger, nullable=False, server_default="0"),
    Column("carrier_stat", String(16), nullable=True),
    Column("carrier_err", String(16), nullable=True),
    Column("error_code", String(32), nullable=True),  # platform error code for failed messages
    Column("refunded", Boolean, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("send_at", BigInteger, nullable=True),
    Column("submitted_at", BigInteger, nullable=True),
    Column("done_at", BigInteger, nullable=True),
)
Index("ix_messages_account_created", messages.c.account_id, messages.c.created_at)

# The hot queue: one row per message waiting to be submitted. ``due_at`` doubles as the lease:
# claiming a row pushes due_at forward by the lease time; success deletes the row; a crash leaves it
# to become due again when the lease runs out.
dispatch_queue = Table(
    "dispatch_queue",
    metadata,
    Column("message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("priority", SmallInteger, nullable=False),  # 0 verification, 1 notification, 2 marketing
    Column("due_at", BigInteger, nullable=False),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
)
Index("ix_dispatch_queue_due", dispatch_queue.c.priority, dispatch_queue.c.due_at)

# One row per submitted part: how receipts find their message.
submits = Table(
    "submits",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("carrier_msg_id", String(64), primary_key=True),
    Column("message_id", BigInteger, nullable=False, index=True),
    Column("part_no", SmallInteger, nullable=False),
    Column("stat", String(16), nullable=True),  # receipt stat once received
    Column("submitted_at", BigInteger, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # topup | charge | refund | adjust
    Column("amount_li", BigInteger, nullable=False),  # signed: charges negative
    Column("balance_after_li", BigInteger, nullable=False),
    Column("ref", String(64), nullable=False),  # batch id for charges, message id for refunds, …
    Column("note", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # a refund (or charge) happens at most once per reference
    UniqueConstraint("account_id", "kind", "ref", name="uq_ledger_once"),
)
Index("ix_ledger_account", ledger.c.account_id, ledger.c.id)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("api_key_id", BigInteger, nullable=False),  # its secret signs the push
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),  # one JSON event
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("next_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),  # pending|sent|dead
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_webhook_outbox_due", webhook_outbox.c.status, webhook_outbox.c.next_at)


# -- staff and audit (migration 0002) -----------------------------------------------------------------

staff = Table(
    "staff",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # admin | reviewer | finance | ops
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the bearer token
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_at", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("actor_type", String(16), nullable=False),  # staff | customer | system | cli
    Column("actor_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128), nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default="{}"),
    Column("ip", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_audit_log_created", audit_log.c.created_at)
