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
    text,
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
    # INTEGER on SQLite: the key is the rowid (one B-tree); migration 0015_rowid_keys
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
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
    # INTEGER on SQLite: the key is the rowid (one B-tree); migration 0015_rowid_keys
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
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
# no (account_id, created_at) index (migration 0022_writer dropped ix_messages_account_created: one more
# entry per accepted message): ids are time-ordered, so an account's messages of a period are a range of
# ix_messages_account_id (store/statements.sms_totals)
# the records page and GET /v1/sms: an account's messages newest first, one page (store/reads.search_messages)
Index("ix_messages_account_id", messages.c.account_id, messages.c.id)
# the receipt-timeout sweep walks messages by id (no index on status: migration 0022_writer dropped
# ix_messages_awaiting_receipt, which every status change maintained); receipt_sweep / receipt_watch below

# The hot queue: one row per message waiting to be submitted. ``due_at`` doubles as the lease:
# claiming a row pushes due_at forward by the lease time; success deletes the row; a crash leaves it
# to become due again when the lease runs out.
dispatch_queue = Table(
    "dispatch_queue",
    metadata,
    # INTEGER on SQLite: the key is the rowid (one B-tree); migration 0015_rowid_keys
    Column("message_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
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


# -- channels, extension codes, ported numbers, uplink (migration 0005) ------------------------------------

channels = Table(
    "channels",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("protocol", String(16), nullable=False),  # smpp | cmpp2 | cmpp3 | sgip | smgp
    Column("host", String(128), nullable=False),
    Column("port", Integer, nullable=False),
    Column("username", String(64), nullable=False),  # system_id / SP id / login name / client id
    Column("secret", String(128), nullable=False),
    Column("service_code", String(21), nullable=False, server_default=""),  # 特服号 / src_id, extension appended
    Column("options", Text, nullable=False, server_default="{}"),  # protocol extras (node id, corp id, …) JSON
    Column("tps", Integer, nullable=False, server_default="0"),  # 0 = no cap
    Column("window_size", Integer, nullable=False, server_default="16"),
    Column("connections", Integer, nullable=False, server_default="1"),
    Column("carriers", String(64), nullable=False, server_default=""),  # comma list; empty = all
    Column("msg_types", String(64), nullable=False, server_default=""),  # comma list; empty = all
    Column("accounts", Text, nullable=False, server_default=""),  # dedicated to these account ids; empty = shared
    Column("priority", Integer, nullable=False, server_default="100"),  # lower first
    Column("weight", Integer, nullable=False, server_default="1"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("embedded", Boolean, nullable=False, server_default="0"),  # points at a built-in simulator
    Column("version", Integer, nullable=False, server_default="1"),  # bumped on every change
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# 扩展码: appended to a channel's service code; MO to service_code + code belongs to the account
extensions = Table(
    "extensions",
    metadata,
    Column("code", String(12), primary_key=True),
    Column("account_id", BigInteger, nullable=False, index=True),
    Column("signature", String(32), nullable=True),  # per-signature extension when set
    Column("created_at", BigInteger, nullable=False),
)

# numbers learned (from receipts) to belong to another carrier than their prefix says (携号转网)
ported_numbers = Table(
    "ported_numbers",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("carrier", String(8), nullable=False),
    Column("learned_at", BigInteger, nullable=False),
)
Index("ix_ported_numbers_learned", ported_numbers.c.learned_at)

# receipts that matched no stored submit yet (the submit's outcome not flushed, possibly by another
# dispatcher): stored before the carrier is answered, re-applied until they match or grow stale
receipt_inbox = Table(
    "receipt_inbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("carrier_msg_id", String(64), nullable=False),
    Column("stat", String(16), nullable=False),
    Column("err", String(16), nullable=False),
    Column("received_at", BigInteger, nullable=False),
)

# the manager's latest view of each running channel (sessions, window, TPS, errors, receipts), for
# `qixin channels` and for other processes; written every few seconds
channel_health = Table(
    "channel_health",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("health", Text, nullable=False),  # JSON
    Column("updated_at", BigInteger, nullable=False),
)

mo_messages = Table(
    "mo_messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=True, index=True),  # NULL: no extension matched
    Column("channel", String(64), nullable=False),
    Column("source", String(32), nullable=False),  # the subscriber
    Column("destination", String(32), nullable=False),  # service code + extension
    Column("content", Text, nullable=False),
    Column("received_at", BigInteger, nullable=False),
)


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


# -- billing: account billing settings, price plans, packages, refund rules, notifications, statements ---
# (migration 0004; services/billing.py, pricing.py, statements.py, notify.py)

# One row per account that has billing rules beyond the defaults (created on first use).
billing_accounts = Table(
    "billing_accounts",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("min_first_topup_li", BigInteger, nullable=False, server_default="0"),  # 0 = no minimum
    Column("min_topup_li", BigInteger, nullable=False, server_default="0"),
    Column("validity_months", Integer, nullable=False, server_default="12"),  # per top-up; 0 = never expires
    Column("balance_expires_at", BigInteger, nullable=True),  # NULL = no expiry yet
    Column("topups", Integer, nullable=False, server_default="0"),  # customer top-ups so far (first vs later)
    Column("low_balance_li", BigInteger, nullable=False, server_default="0"),  # alert threshold; 0 = off
    Column("low_alert_armed", Boolean, nullable=False, server_default="1"),  # re-armed when back above
    Column("alert_email", Text, nullable=True),
    Column("alert_webhook", Text, nullable=True),
    Column("alert_mobile", String(32), nullable=True),
    Column("billing_email", Text, nullable=True),  # statements go here
    Column("updated_at", BigInteger, nullable=False),
)

# Prices per account × product × carrier ('' = any) × message type ('' = any), from an effective time.
price_plans = Table(
    "price_plans",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("product", String(16), nullable=False),  # sms (per billed part) | numcheck (per query)
    Column("carrier", String(8), nullable=False, server_default=""),
    Column("msg_type", String(16), nullable=False, server_default=""),
    Column("price_li", BigInteger, nullable=False),
    Column("effective_at", BigInteger, nullable=False),
    Column("note", Text, nullable=True),
    Column("created_by", String(64), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_price_plans_account", price_plans.c.account_id, price_plans.c.product, price_plans.c.effective_at)

# 条数包: parts valid from starts_at until expires_at; remaining_parts == sum of its package_ledger parts.
packages = Table(
    "packages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("product", String(16), nullable=False, server_default="sms"),
    Column("kind", String(16), nullable=False),  # year (calendar year, cleared 1 January) | term
    Column("name", String(64), nullable=False, server_default=""),
    Column("total_parts", BigInteger, nullable=False),
    Column("remaining_parts", BigInteger, nullable=False),
    Column("price_li", BigInteger, nullable=False, server_default="0"),
    Column("starts_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),  # active | expired
    Column("ref", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "ref", name="uq_packages_ref"),
)
Index("ix_packages_account", packages.c.account_id, packages.c.status, packages.c.expires_at)

# Every change of packages.remaining_parts: grant | use | return | expire (never updated or deleted).
package_ledger = Table(
    "package_ledger",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("package_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("parts", BigInteger, nullable=False),  # signed: use and expiry negative
    Column("remaining_after", BigInteger, nullable=False),
    Column("ref", String(64), nullable=False),
    Column("note", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("package_id", "kind", "ref", name="uq_package_ledger_once"),
)
Index("ix_package_ledger_account", package_ledger.c.account_id, package_ledger.c.id)

# Which messages of a batch a package paid for (a contiguous range of message ids), for refunds.
package_uses = Table(
    "package_uses",
    metadata,
    Column("batch_id", BigInteger, primary_key=True, autoincrement=False),
    Column("package_id", BigInteger, primary_key=True, autoincrement=False),
    Column("first_message_id", BigInteger, nullable=False),
    Column("last_message_id", BigInteger, nullable=False),
    Column("parts", BigInteger, nullable=False),
)

# Which receipt stats / carrier error codes are refunded (account_id 0 = every account).
refund_rules = Table(
    "refund_rules",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False, server_default="0"),
    Column("kind", String(8), nullable=False),  # stat | err
    Column("code", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "kind", "code", name="uq_refund_rules"),
)

# Notices to customers: price changes, balance-low alerts, statements (email | webhook | sms | record).
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),  # price_change | balance_low | statement
    Column("channel", String(16), nullable=False),
    Column("target", Text, nullable=False, server_default=""),  # address, URL or mobile number
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("ref", String(64), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="pending"),  # pending | sent | failed | recorded
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
)
Index("ix_notifications_account", notifications.c.account_id, notifications.c.id)
Index("ix_notifications_status", notifications.c.status, notifications.c.id)

# 对账单: one per account and month (Asia/Shanghai), totals equal to the ledger of the period.
statements = Table(
    "statements",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("period", String(7), nullable=False),  # YYYY-MM
    Column("period_start", BigInteger, nullable=False),
    Column("period_end", BigInteger, nullable=False),
    Column("opening_li", BigInteger, nullable=False),
    Column("topups_li", BigInteger, nullable=False),
    Column("charges_li", BigInteger, nullable=False),  # negative
    Column("refunds_li", BigInteger, nullable=False),
    Column("expired_li", BigInteger, nullable=False),  # negative
    Column("other_li", BigInteger, nullable=False),
    Column("closing_li", BigInteger, nullable=False),
    Column("messages", BigInteger, nullable=False),
    Column("parts", BigInteger, nullable=False),
    Column("package_used", BigInteger, nullable=False),
    Column("package_expired", BigInteger, nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON: breakdown by product/type/carrier
    Column("status", String(16), nullable=False, server_default="issued"),  # issued | confirmed | disputed
    Column("issued_at", BigInteger, nullable=False),
    Column("dispute_deadline_at", BigInteger, nullable=False),
    Column("dispute_reason", Text, nullable=True),
    Column("decided_at", BigInteger, nullable=True),
    Column("emailed_at", BigInteger, nullable=True),
    Column("email_error", Text, nullable=True),
    UniqueConstraint("account_id", "period", name="uq_statements_period"),
)


# -- compliance (migration 0003, issue 4; docs/compliance.md) ------------------------------------------

# Per-account compliance policy; an account without a row has the defaults of ComplianceSettings.
account_policies = Table(
    "account_policies",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("permit_24h", Boolean, nullable=False, server_default="0"),
    Column("international", Boolean, nullable=False, server_default="0"),
    Column("link_policy", String(16), nullable=False, server_default="allowed"),  # allowed|allowlist|refused
    Column("allowed_domains", Text, nullable=False, server_default=""),  # comma-separated
    Column("limits", Text, nullable=False, server_default="{}"),  # JSON: frequency limit overrides
    Column("optout_words", Text, nullable=False, server_default=""),  # comma-separated, added to the defaults
    Column("max_number_run", Integer, nullable=True),  # NULL: the platform default
    Column("updated_at", BigInteger, nullable=False),
    # verification codes follow the sending window too (default: they go out at any hour)
    Column("verification_window", Boolean, nullable=False, server_default="0"),
    # a notification / verification that reads as marketing: "marketing" (treated as marketing),
    # "refuse" (CONTENT_TYPE_MISMATCH) or "off" (migration 0020_review)
    Column("promo_as", String(16), nullable=False, server_default="marketing"),
)

# The account's opt-out list; signature "" means every signature of the account.
optouts = Table(
    "optouts",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("number", String(32), primary_key=True),
    Column("signature", String(32), primary_key=True, server_default=""),
    Column("source", String(16), nullable=False),  # mo | import | staff
    Column("created_at", BigInteger, nullable=False),
)

# The global blacklist (complainants, staff-maintained): refuses every message to the number.
blacklist = Table(
    "blacklist",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("reason", Text, nullable=False, server_default=""),
    Column("source", String(16), nullable=False),  # complaint | staff | import
    Column("created_at", BigInteger, nullable=False),
)

violations = Table(
    "violations",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("code", String(32), nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON: word, category, character, link …
    Column("content", Text, nullable=False),  # the refused message text
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_violations_account_created", violations.c.account_id, violations.c.created_at)

# Versioned lexicon: version v holds the entries with added_in <= v and (removed_in IS NULL or > v).
lexicon_versions = Table(
    "lexicon_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("actor", String(64), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("added", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

lexicon_entries = Table(
    "lexicon_entries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # word | allow
    Column("word", String(64), nullable=False),
    Column("category", String(32), nullable=False, server_default=""),  # "" for allow-listed phrases
    Column("added_in", Integer, nullable=False),
    Column("removed_in", Integer, nullable=True),
)
Index("ix_lexicon_entries_word", lexicon_entries.c.kind, lexicon_entries.c.word)

complaints = Table(
    "complaints",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False, index=True),
    Column("message_id", BigInteger, nullable=True),
    Column("account_id", BigInteger, nullable=True),
    Column("note", Text, nullable=False, server_default=""),
    Column("actor", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# The audience description a customer declared for a batch (required for marketing): complaint evidence.
batch_audience = Table(
    "batch_audience",
    metadata,
    Column("batch_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("audience", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# -- manual review of content (人工审核, migration 0020_review; services/compliance/review.py) ----------------
# A batch the content classifier holds waits here (its messages are charged and queued "never" until a
# decision); one row per batch, reviewed once whatever its number count.
review_holds = Table(
    "review_holds",
    metadata,
    Column("batch_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved | rejected | expired
    Column("category", String(32), nullable=False),
    Column("score", Integer, nullable=False),  # probability in per mille
    Column("evidence", Text, nullable=False),  # JSON array of phrases
    Column("model_version", String(32), nullable=False),
    Column("send_at", BigInteger, nullable=True),  # the time the batch would have gone (deferral), NULL = now
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("decided_at", BigInteger, nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("reason", Text, nullable=True),
)
Index("ix_review_holds_status", review_holds.c.status, review_holds.c.expires_at)

# Staff decisions on held content: labelled texts that ``qixin classifier retrain`` adds to the corpus.
classifier_decisions = Table(
    "classifier_decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("batch_id", BigInteger, nullable=True),
    Column("text", Text, nullable=False),
    Column("label", String(32), nullable=False),  # a classifier category or "legit"
    Column("decided_by", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Packages frozen with their account (c003 8.5): thawing gives a term package the frozen time back.
package_freezes = Table(
    "package_freezes",
    metadata,
    Column("package_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False, index=True),
    Column("frozen_at", BigInteger, nullable=False),
)

# Retrained classifier models (the newest is in force in every process; none = the shipped model).
classifier_models = Table(
    "classifier_models",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("version", String(32), nullable=False, unique=True),
    Column("model", Text, nullable=False),  # ClassifierModel.dumps()
    Column("decisions", Integer, nullable=False),  # staff decisions it was trained with
    Column("created_by", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Signature applications: purpose, and the qualification documents stored under data_dir.
signature_info = Table(
    "signature_info",
    metadata,
    Column("signature_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("purpose", Text, nullable=False, server_default=""),
    Column("updated_at", BigInteger, nullable=False),
)

qualification_documents = Table(
    "qualification_documents",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("signature_id", BigInteger, nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(128), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", Text, nullable=False),  # relative to data_dir
    Column("created_at", BigInteger, nullable=False),
)


# -- statistics (migration 0008; services/stats.py) ------------------------------------------------------
# Rollups by hour of acceptance × account × signature × template × type × carrier × province × channel ×
# status × failure reason, maintained in the transactions that change a message's status (never by
# scanning messages for a query). ``qixin stats verify`` compares them with the message rows.
stats_hourly = Table(
    "stats_hourly",
    metadata,
    Column("hour", BigInteger, primary_key=True, autoincrement=False),  # ms UTC, start of the hour
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("signature", String(32), primary_key=True),
    Column("template_id", BigInteger, primary_key=True, autoincrement=False),  # 0: free text
    Column("type", String(16), primary_key=True),
    Column("carrier", String(8), primary_key=True),
    Column("province", String(16), primary_key=True),
    Column("channel", String(64), primary_key=True),  # "" before submission
    Column("status", String(16), primary_key=True),
    Column("reason", String(24), primary_key=True),  # domain.delivery.REASONS key, "" unless failed
    Column("messages", BigInteger, nullable=False, server_default="0"),
    Column("parts", BigInteger, nullable=False, server_default="0"),
    Column("fee_li", BigInteger, nullable=False, server_default="0"),
)
Index("ix_stats_hourly_account_hour", stats_hourly.c.account_id, stats_hourly.c.hour)
# The lean rollup (migration 0023_stats_core): the same sums without signature, template, province and
# channel, written with stats_hourly (store/stats.add), for queries that need none of those; keyed by
# account first (WITHOUT ROWID on SQLite: an account's hours are one range of the table).
stats_hourly_core = Table(
    "stats_hourly_core",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("hour", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(16), primary_key=True),
    Column("carrier", String(8), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("reason", String(24), primary_key=True),
    Column("messages", BigInteger, nullable=False, server_default="0"),
    Column("parts", BigInteger, nullable=False, server_default="0"),
    Column("fee_li", BigInteger, nullable=False, server_default="0"),
    sqlite_with_rowid=False,
)
Index("ix_stats_hourly_core_hour", stats_hourly_core.c.hour)

# Nonces of signed requests, kept for the whole timestamp window so a replay is refused even after a
# restart (embedded mode; the distributed mode keeps them in Redis). Expired rows are purged in batches.
api_nonces = Table(
    "api_nonces",
    metadata,
    Column("app_key", String(64), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

# -- number services: status check (空号检测), issue 14 (migration 0014_numbers; services/numbercheck.py) --
# The history evidence reads the final messages of a number. Partial: a message enters the index when it
# becomes final (a receipt-time cost), never at accept, so the 100,000-number send pays nothing. On
# done_at, not status (migration 0022_writer): done_at is set exactly when a message becomes final, and no
# other status change (the submit) writes it, so they do not maintain the index (on PostgreSQL the
# submit's update can be HOT).
Index(
    "ix_messages_number_done",
    messages.c.number,
    sqlite_where=messages.c.done_at.isnot(None),
    postgresql_where=messages.c.done_at.isnot(None),
)

# One row per check (an inline request or a batch); its fee is on the ledger as ref "numcheck:<id>".
number_checks = Table(
    "number_checks",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("total", Integer, nullable=False),  # numbers checked
    Column("charged", Integer, nullable=False),  # of them billed (库无 and upstream timeouts/errors are free)
    Column("fee_li", BigInteger, nullable=False),
    Column("unit_li", BigInteger, nullable=False),
    Column("counts", Text, nullable=False, server_default="{}"),  # JSON: class -> numbers
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_number_checks_account", number_checks.c.account_id, number_checks.c.created_at)

# The results of a check in pages of 1,000: JSON rows [seq, number, class, carrier, province, ported,
# confidence in per mille, evidence codes space-separated, billed] (one row per page, not per number: a
# 100,000-number check writes 100 rows).
number_check_pages = Table(
    "number_check_pages",
    metadata,
    Column("check_id", BigInteger, primary_key=True, autoincrement=False),
    Column("page", Integer, primary_key=True, autoincrement=False),
    Column("rows", Text, nullable=False),
)

# -- privacy numbers: recipient tokens (issue 14, migration 0014b_tokens; services/tokens.py) ------------
# A token stands for a real number of one account until it expires; the number is sealed (SecretBox)
# and found by its keyed hash. A message sent to a token carries it (messages.token): every customer
# read shows the token instead of the number.
recipient_tokens = Table(
    "recipient_tokens",
    metadata,
    Column("token", String(40), primary_key=True),
    Column("account_id", BigInteger, nullable=False),
    Column("number_sealed", Text, nullable=False),
    Column("number_hash", String(64), nullable=False),  # SecretBox.mac("token-number", number)
    Column("expires_at", BigInteger, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_recipient_tokens_number", recipient_tokens.c.account_id, recipient_tokens.c.number_hash)
messages.append_column(Column("token", String(40), nullable=True))

# -- interception tests (闪测), issue 14 (migration 0014c_flash; services/flashtests.py) ---------------------
# A message pinned to one channel goes there or nowhere (dispatch Router.pick).
messages.append_column(Column("pin_channel", String(64), nullable=True))

# Test phones per carrier that staff keep (the embedded default uses simulator numbers when none is set).
flash_seeds = Table(
    "flash_seeds",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("carrier", String(8), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
)

flash_tests = Table(
    "flash_tests",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("signature", String(32), nullable=False),
    Column("content", Text, nullable=False),
    Column("type", String(16), nullable=False),
    Column("timeout_ms", BigInteger, nullable=False),  # no receipt within this: "no_receipt"
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_flash_tests_account", flash_tests.c.account_id, flash_tests.c.created_at)

# One batch per channel tested (its messages pinned to the channel); rejected: accept's refusals (JSON).
flash_test_batches = Table(
    "flash_test_batches",
    metadata,
    Column("test_id", BigInteger, primary_key=True, autoincrement=False),
    Column("channel", String(64), primary_key=True),
    Column("batch_id", BigInteger, nullable=True),  # NULL: accept refused every seed
    Column("rejected", Text, nullable=False, server_default="[]"),
)

# -- number check file jobs (issue 14, migration 0014d_numcheck_jobs; services/numbercheck_jobs.py) ------
# A batch check of up to 1,000,000 numbers from a file, processed in chunks; each chunk's results,
# its share of the settlement and the progress commit together, so a restart resumes at the next chunk.
number_check_jobs = Table(
    "number_check_jobs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # = number_checks.id
    Column("account_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # queued | running | done
    Column("total", Integer, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("chunk_size", Integer, nullable=False),
    Column("done_chunks", Integer, nullable=False, server_default="0"),
    Column("unit_li", BigInteger, nullable=False),
    Column("lease_until", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ix_number_check_jobs_status", number_check_jobs.c.status, number_check_jobs.c.created_at)

# A job's normalised input, one row per chunk: JSON [[as written, 11 digits or null], …]; deleted when done.
number_check_inputs = Table(
    "number_check_inputs",
    metadata,
    Column("job_id", BigInteger, primary_key=True, autoincrement=False),
    Column("chunk", Integer, primary_key=True, autoincrement=False),
    Column("entries", Text, nullable=False),
)

# -- direct connections: customer SMPP / CMPP ports (migration 0010_ports; services/connections.py) ------
# A login a customer's own SMPP or CMPP client binds with (账号直连). The secret is sealed with the
# platform's SecretBox (CMPP needs the shared secret itself for the MD5 authenticator); it is never shown.
direct_connections = Table(
    "direct_connections",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("protocol", String(8), nullable=False),  # smpp | cmpp
    Column("login", String(32), nullable=False),  # SMPP system_id / CMPP SP id (Source_Addr)
    Column("secret", Text, nullable=False),  # sealed
    Column("ip_allowlist", Text, nullable=False, server_default=""),  # comma-separated CIDRs; empty = any
    Column("max_connections", Integer, nullable=False, server_default="4"),
    Column("tps", Integer, nullable=False, server_default="0"),  # 0 = no cap of its own
    Column("daily_cap", Integer, nullable=False, server_default="0"),  # messages per Beijing day; 0 = none
    Column("service_code", String(21), nullable=False, server_default=""),  # source address prefix shown
    Column("signature", String(32), nullable=False, server_default=""),  # empty: 【…】 in the text
    Column("msg_type", String(16), nullable=False, server_default="notification"),
    Column("status", String(16), nullable=False, server_default="active"),  # active | disabled
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deliver_to", String(64), nullable=False, server_default=""),  # SGIP: host:port of the SP's listener
    UniqueConstraint("protocol", "login", name="uq_direct_connections_login"),
)

# What the ports owe their customers: one row per receipt (per submit_sm / SUBMIT the customer made;
# ``message_id`` set while it waits for the message to become final) and per MO. Delivered rows are
# deleted once the customer acknowledged them; ``next_at`` is the lease of a delivery in flight.
port_events = Table(
    "port_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("connection_id", BigInteger, nullable=True),  # receipts: the login that submitted; MO: NULL
    Column("kind", String(8), nullable=False),  # receipt | mo
    Column("state", String(8), nullable=False),  # waiting (for the message's final status) | ready
    Column("failures_only", Boolean, nullable=False, server_default="0"),  # receipt wanted only if it failed
    Column("message_id", BigInteger, nullable=True),  # the platform's message (receipts)
    Column("customer_id", String(64), nullable=False, server_default=""),  # the id the customer was given
    Column("source", String(32), nullable=False, server_default=""),
    Column("destination", String(32), nullable=False, server_default=""),
    Column("content", Text, nullable=False, server_default=""),  # MO text; receipts: the first characters
    Column("stat", String(16), nullable=True),
    Column("err", String(16), nullable=True),
    Column("submitted_at", BigInteger, nullable=False),
    Column("done_at", BigInteger, nullable=True),
    Column("next_at", BigInteger, nullable=False, server_default="0"),
)
# Messages accepted per direct connection and Beijing day (its daily cap), counted in the accept transaction.
connection_daily = Table(
    "connection_daily",
    metadata,
    Column("connection_id", BigInteger, primary_key=True, autoincrement=False),
    Column("day", Integer, primary_key=True, autoincrement=False),  # YYYYMMDD, Asia/Shanghai
    Column("messages", BigInteger, nullable=False, server_default="0"),
)
Index("ix_port_events_ready", port_events.c.state, port_events.c.account_id, port_events.c.next_at)
Index("ix_port_events_message", port_events.c.message_id)
# -- flow control and the Aliyun-compatible API (issue 12, branch aliyun) ---------------------------------

# Per-account flow control (c001 2(1), (9)), set by staff: a TPS cap and a daily cap, both in billed
# parts; 0 = no cap. services/flow.py caches them with the account and counts in memory or Redis.
account_flow = Table(
    "account_flow",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("tps", Integer, nullable=False, server_default="0"),
    Column("daily_cap", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", BigInteger, nullable=False),
)

# The payload format of an API key's receipt and MO pushes: "qixin" (default, no row) or "aliyun"
# (SmsReport / SmsUp shapes, docs/aliyun.md).
callback_formats = Table(
    "callback_formats",
    metadata,
    Column("api_key_id", BigInteger, primary_key=True, autoincrement=False),
    Column("format", String(16), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# -- file jobs (migration 0010_filejobs; services/filejobs.py) -------------------------------------------
# A file job sends the numbers of an uploaded file in chunks, each chunk one accept request (idempotency
# key "job:<id>:chunk:<n>"). A chunk row is written once the chunk's accept has committed, so a runner
# that resumes a job (after a restart, or another process after the lease ran out) skips exactly the
# chunks that went out and replays the rest through the same idempotency keys (never sent twice).
file_jobs = Table(
    "file_jobs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False, index=True),
    Column("app_key", String(64), nullable=False),  # the key whose account, price and rules the chunks use
    Column("status", String(16), nullable=False),  # running | done | failed | cancelled
    Column("filename", String(255), nullable=False),
    Column("path", Text, nullable=False),  # the stored file, relative to data_dir
    Column("size", BigInteger, nullable=False),
    Column("options", Text, nullable=False),  # JSON: type, signature, content | template_id + params(_columns), …
    Column("total", BigInteger, nullable=False),  # numbers in the file (non-blank)
    Column("duplicates", BigInteger, nullable=False),  # repeats removed before chunking
    Column("chunks", Integer, nullable=False),
    Column("error_code", String(40), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_by", String(80), nullable=False),  # actor kind:id
    Column("runner", String(40), nullable=True),  # the process running it now
    Column("lease_until", BigInteger, nullable=False, server_default="0"),  # ms UTC; 0 = free
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
)
Index("ix_file_jobs_status", file_jobs.c.status)

file_job_chunks = Table(
    "file_job_chunks",
    metadata,
    Column("job_id", BigInteger, primary_key=True, autoincrement=False),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("size", Integer, nullable=False),  # numbers of the file in this chunk
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("fee_li", BigInteger, nullable=False),
    Column("refused", Text, nullable=False),  # JSON {code: count}
    Column("batch_ids", Text, nullable=False),  # comma-separated batches the chunk's accepts made
    Column("committed_at", BigInteger, nullable=False),
)


# -- alerts and maintenance announcements (migration 0010_alerts; services/alerts.py, announcements.py) ----

# Alert rules as data (domain/alerts.py: kinds, scopes, units); the defaults are seeded by the migration.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("scope", String(16), nullable=False),  # channel | account | platform
    Column("threshold", BigInteger, nullable=False, server_default="0"),  # percent, seconds, count or 厘
    Column("for_seconds", Integer, nullable=False, server_default="0"),
    Column("window_seconds", Integer, nullable=False, server_default="0"),
    Column("min_messages", Integer, nullable=False, server_default="0"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("kind", "scope", name="uq_alert_rules_kind_scope"),
)

# One row per alert: fired, then resolved (resolved_at) and/or acknowledged by staff.
alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("rule_id", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", String(96), nullable=False),  # channel:<name> | account:<id> | platform
    Column("value", BigInteger, nullable=False, server_default="0"),  # observed, in the rule's unit
    Column("message", Text, nullable=False),
    Column("fired_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("acknowledged_by", String(64), nullable=True),
    Column("acknowledged_at", BigInteger, nullable=True),
)
Index("ix_alerts_open", alerts.c.resolved_at, alerts.c.rule_id)
Index("ix_alerts_fired", alerts.c.fired_at)

# Maintenance windows and incidents published by staff (c003 5.8); audience 'all' or the listed accounts.
announcements = Table(
    "announcements",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # maintenance | incident
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=True),
    Column("audience", String(8), nullable=False),  # all | list
    Column("status", String(16), nullable=False, server_default="published"),  # published | withdrawn
    Column("created_by", String(64), nullable=False),
    Column("published_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ix_announcements_starts", announcements.c.starts_at)

announcement_accounts = Table(
    "announcement_accounts",
    metadata,
    Column("announcement_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
)
Index("ix_announcement_accounts_account", announcement_accounts.c.account_id)

# -- console: users, login sessions, login IP ranges (migration 0010_console; services/console_users.py) --

# A console login: a customer's user (account + customer role) or a staff member's (staff_id; the role
# is the staff row's). Logins are by phone number; the password is an argon2 hash.
console_users = Table(
    "console_users",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # customer | staff
    Column("account_id", BigInteger, nullable=True),  # customer users
    Column("staff_id", BigInteger, nullable=True, unique=True),  # staff users
    Column("name", String(64), nullable=False),
    Column("phone", String(20), nullable=False, unique=True),  # normalised, the login name
    Column("role", String(16), nullable=False),  # owner | operator | finance | viewer; staff: "" (see staff)
    Column("password_hash", String(255), nullable=False),
    Column("must_change", Boolean, nullable=False),  # forced change at the next login
    Column("failed_count", Integer, nullable=False, server_default="0"),
    Column("locked_until", BigInteger, nullable=False, server_default="0"),  # ms UTC; 0: not locked
    Column("password_changed_at", BigInteger, nullable=False),
    Column("totp_secret", String(64), nullable=True),  # staff: optional TOTP (write-only)
    Column("status", String(16), nullable=False, server_default="active"),  # active | removed
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_console_users_account", console_users.c.account_id)

# A login session: only the SHA-256 of the cookie's token is stored. Stage "code" waits for the SMS code
# (its digest, expiry and attempts on the row), stage "full" is logged in.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("stage", String(8), nullable=False),  # code | full
    Column("csrf", String(64), nullable=False),
    Column("code_hash", String(64), nullable=True),
    Column("code_expires_at", BigInteger, nullable=False, server_default="0"),
    Column("code_attempts", Integer, nullable=False, server_default="0"),
    Column("ip", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # a staff session viewing this customer account's console read-only (migration 0022_console3)
    Column("view_account_id", BigInteger, nullable=True),
)
Index("ix_console_sessions_user", console_sessions.c.user_id)

# The IP ranges an account's console users may log in from (none: anywhere), comma-separated CIDRs.
console_login_ranges = Table(
    "console_login_ranges",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("ranges", Text, nullable=False),
)
# The console's "recent batches" of an account, newest first, without sorting all of its batches.
Index("ix_batches_account_id", batches.c.account_id, batches.c.id)


# -- receipt latency histograms and retention (migration 0010_retention; services/latency.py, retention.py) --
# Counts of final receipts per hour (UTC, of the final receipt) × channel × account × fixed log-spaced
# bucket (domain/latency.py), one column per kind: percentiles by merging counts, never by sorting rows.
# Kept by the transaction that makes a message final (services/receipts.apply_receipts); never purged.
latency_hourly = Table(
    "latency_hourly",
    metadata,
    Column("hour", BigInteger, primary_key=True, autoincrement=False),  # ms UTC, start of the hour
    Column("channel", String(64), primary_key=True),
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("bucket", SmallInteger, primary_key=True, autoincrement=False),
    Column("submit_receipt", BigInteger, nullable=False, server_default="0"),  # submission → final receipt
    Column("accept_final", BigInteger, nullable=False, server_default="0"),  # acceptance (or send_at) → final
)
Index("ix_latency_hourly_account_hour", latency_hourly.c.account_id, latency_hourly.c.hour)

# A complaint is open until a row here closes it; the retention purge keeps the messages an open
# complaint names (its message, or every message to its number).
complaint_closures = Table(
    "complaint_closures",
    metadata,
    Column("complaint_id", BigInteger, primary_key=True, autoincrement=False),
    Column("actor", String(64), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("closed_at", BigInteger, nullable=False),
)

# How far the retention purge has gone: message details created before ``before_at`` are purged (except
# complaint evidence); ``qixin stats verify`` / ``rebuild`` compare and recount only the hours from there on.
retention_marks = Table(
    "retention_marks",
    metadata,
    Column("name", String(32), primary_key=True),  # messages
    Column("before_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# PostgreSQL: a month partition of the archive, sealed once its month is over (migration 0024_archive_months;
# store/partitions.py). Nothing enters a past month's id range and the purge's chunked walk never reaches a
# month partition, so the counts taken then are the month's rows when it is dropped; ``open_ids`` are the
# messages that were not final then (the only ones whose status may still change). The purge reads these
# instead of scanning the month, and deletes the row in the transaction that detaches the month.
archive_months = Table(
    "archive_months",
    metadata,
    Column("name", String(64), primary_key=True),  # messages_pYYYYMM
    Column("messages", BigInteger, nullable=False),
    Column("submits", BigInteger, nullable=False),
    Column("open_ids", Text, nullable=False, server_default="[]"),  # JSON list of ids
    Column("sealed_at", BigInteger, nullable=False),
)

# -- number services, part two (issue 14; migration 0020_numbers2) --------------------------------------------
# The latest 空号 / 沉默号 class per account and number from its checks (a send's skip_empty / skip_silent).
number_marks = Table(
    "number_marks",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("number", String(32), primary_key=True),
    Column("cls", String(8), nullable=False),  # empty | silent
    Column("checked_at", BigInteger, nullable=False),
)

# The latest probe of each number-check upstream provider (services/numbercheck_probe.py; alert
# numcheck_provider).
numcheck_probes = Table(
    "numcheck_probes",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("status", String(16), nullable=False),  # ok | timeout | error | open
    Column("latency_ms", BigInteger, nullable=False),
    Column("detail", String(200), nullable=False, server_default=""),
    Column("failures", BigInteger, nullable=False, server_default="0"),  # consecutive failed probes
    Column("probed_at", BigInteger, nullable=False),
)

# The console's address book (通讯录, services/addressbook.py): an account's contacts (one row per number)
# and groups; a contact belongs to any number of groups.
contact_groups = Table(
    "contact_groups",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "name", name="uq_contact_groups_account_name"),
)
contacts = Table(
    "contacts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("number", String(32), nullable=False),  # the stored (normalised) form
    Column("name", String(64), nullable=False, server_default=""),
    Column("fields", Text, nullable=False, server_default="{}"),  # JSON object: the import's other columns
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "number", name="uq_contacts_account_number"),
)
contact_members = Table(
    "contact_members",
    metadata,
    Column("group_id", BigInteger, primary_key=True, autoincrement=False),
    Column("contact_id", BigInteger, primary_key=True, autoincrement=False),
)
Index("ix_contact_members_contact", contact_members.c.contact_id)


# -- the console, third part (migration 0022_console3) ---------------------------------------------------
# An account's contact tags (标签) and which contacts carry them (services/addressbook.py).
contact_tags = Table(
    "contact_tags",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("name", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "name", name="uq_contact_tags_account_name"),
)
contact_taggings = Table(
    "contact_taggings",
    metadata,
    Column("tag_id", BigInteger, primary_key=True, autoincrement=False),
    Column("contact_id", BigInteger, primary_key=True, autoincrement=False),
)
Index("ix_contact_taggings_contact", contact_taggings.c.contact_id)
# the records page filtered by a failure status: only failed messages, each entering once when final
Index(
    "ix_messages_account_failed",
    messages.c.account_id,
    messages.c.id,
    sqlite_where=text("status = 'undelivered' OR status = 'failed' OR status = 'rejected' OR status = 'expired'"),
    postgresql_where=text("status = 'undelivered' OR status = 'failed' OR status = 'rejected' OR status = 'expired'"),
)

# -- export jobs (migration 0022_retention2; services/exports.py, docs/api.md "Export jobs") ---------------
# A large export runs as a job: the validated filter (JSON), the side that asked (a customer account, or
# staff) and whether numbers are shown were fixed at creation; the worker writes the file under data_dir,
# checkpointing its progress (rows, the last message id, the CSV's byte offset) so a restart resumes a CSV
# (an XLSX starts again). Finished jobs are purged with their file after ``export_keep_days``.
export_jobs = Table(
    "export_jobs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=True),  # the customer's account; NULL: a staff export
    Column("created_by", String(80), nullable=False),  # actor kind:id
    Column("reveal", Boolean, nullable=False),  # numbers shown unmasked
    Column("filters", Text, nullable=False),  # JSON: the search conditions (store/reads.SEARCH_FILTERS)
    Column("format", String(8), nullable=False),  # csv | xlsx
    Column("status", String(16), nullable=False),  # queued | running | done | failed
    Column("total", BigInteger, nullable=True),  # rows matching when the job started (an estimate)
    Column("rows_written", BigInteger, nullable=False, server_default="0"),
    Column("last_id", BigInteger, nullable=True),  # the last message written (rows go newest first)
    Column("offset_bytes", BigInteger, nullable=False, server_default="0"),  # the CSV's size at that row
    Column("path", Text, nullable=False),  # relative to data_dir
    Column("size", BigInteger, nullable=True),
    Column("error_code", String(40), nullable=True),
    Column("runner", String(40), nullable=True),
    Column("lease_until", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
)
Index("ix_export_jobs_status", export_jobs.c.status)
Index("ix_export_jobs_account", export_jobs.c.account_id, export_jobs.c.id)

# PostgreSQL (migration 0022_retention2, store/partitions.py): ``messages`` is range-partitioned by ``id``
# and ``submits`` by ``message_id``, one partition per Beijing month plus a default; the primary key of
# ``submits`` there is (channel, carrier_msg_id, message_id) — a partitioned table's key must hold the
# partition key. Alembic compares neither partitioning nor primary keys; the partitions themselves are
# left out of the comparison (partitions.include_name).

# -- alert notices and leases (migration 0022_retention2; services/alerts.py) ------------------------------
# One row per notice of a fired or resolved alert to one target (email:<address>, webhook, sms), written in
# the transaction that fires or resolves the alert; delivered after the commit, retried with backoff until
# sent or given up (dead). A sender claims a row by moving next_at forward (a lease), so one process sends it.
alert_notices = Table(
    "alert_notices",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("alert_id", BigInteger, nullable=False, index=True),
    Column("event", String(16), nullable=False),  # fired | resolved
    Column("target", String(160), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: the alert as it was then
    Column("status", String(16), nullable=False, server_default="pending"),  # pending | sent | dead
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("next_at", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
)
Index("ix_alert_notices_due", alert_notices.c.status, alert_notices.c.next_at)

# A named lease one process holds at a time (the alert evaluator): taken when free or run out, renewed by
# its holder.
service_leases = Table(
    "service_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(80), nullable=False),
    Column("until", BigInteger, nullable=False),
)

# -- periodic 闪测 of every channel (issue 14, migration 0022_flash2; services/flashtests.py FlashProbe) ---
# One row per probe round (a flash test of the probe text over every channel); settled once its report is
# done. The results per channel and round, and the latest per channel (read by the alert kind flash_probe).
flash_probe_rounds = Table(
    "flash_probe_rounds",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("test_id", BigInteger, nullable=True),  # NULL: nothing was sent (no channel, the probe refused)
    Column("started_at", BigInteger, nullable=False),
    Column("settled_at", BigInteger, nullable=True),
    Column("detail", String(200), nullable=False, server_default=""),
)
Index("ix_flash_probe_rounds_started", flash_probe_rounds.c.started_at)
flash_probes = Table(
    "flash_probes",
    metadata,
    Column("round_id", BigInteger, primary_key=True, autoincrement=False),
    Column("channel", String(64), primary_key=True),
    Column("outcome", String(16), nullable=False),  # delivered | refused | no_receipt
    Column("seeds", Integer, nullable=False),
    Column("delivered", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    Column("no_receipt", Integer, nullable=False),
    Column("latency_ms", BigInteger, nullable=True),  # the slowest delivered seed
    Column("code", String(64), nullable=False, server_default=""),  # the first refusal's code
    Column("probed_at", BigInteger, nullable=False),
)
Index("ix_flash_probes_channel", flash_probes.c.channel, flash_probes.c.probed_at)
flash_probe_channels = Table(
    "flash_probe_channels",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("failures", BigInteger, nullable=False, server_default="0"),  # rounds in a row not delivered
    Column("latency_ms", BigInteger, nullable=True),
    Column("code", String(64), nullable=False, server_default=""),
    Column("round_id", BigInteger, nullable=False),
    Column("probed_at", BigInteger, nullable=False),
    Column("last_delivered_at", BigInteger, nullable=True),
)

# -- the receipt-timeout sweep without an index on status (migration 0022_writer; services/receipts.py) -----
# How far the sweep has walked messages by id (one row, name "messages").
receipt_sweep = Table(
    "receipt_sweep",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("next_id", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Messages the sweep walked past before they were final (queued, scheduled, held, submitted late): looked
# at again at due_at.
receipt_watch = Table(
    "receipt_watch",
    metadata,
    Column("message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("due_at", BigInteger, nullable=False, index=True),
)
