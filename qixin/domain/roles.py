"""Who may do what: the one table of staff roles and their areas (pure data).

Roles: admin (everything), reviewer (signatures, templates, lexicon), finance (money: top-ups, prices,
packages, statements), ops (channels, monitoring). ``ROLE_GRANTS`` maps an area to the roles allowed in
it besides admin, who passes every check. Use cases check areas through ``services.actor.Actor``.
"""

from __future__ import annotations

ROLES = ("admin", "reviewer", "finance", "ops")

# area -> roles allowed besides admin
ROLE_GRANTS: dict[str, frozenset[str]] = {
    "accounts.read": frozenset({"reviewer", "finance", "ops"}),
    "accounts.write": frozenset(),
    "review": frozenset({"reviewer"}),
    "compliance": frozenset({"reviewer"}),
    "money": frozenset({"finance"}),
    "channels": frozenset({"ops"}),
    "audit.read": frozenset(),
    "staff.write": frozenset(),
    "numbers.read": frozenset(),  # full phone numbers in staff lists and exports (others see 138****8000)
}

# -- customer console users (docs/console.md) ------------------------------------------------------------
# A console user belongs to one account and has one of these roles; the owner invites and removes users.
CUSTOMER_ROLES = ("owner", "operator", "finance", "viewer")

# console area -> customer roles allowed in it (API keys act with no role and pass none of these)
CUSTOMER_GRANTS: dict[str, frozenset[str]] = {
    "console.read": frozenset(CUSTOMER_ROLES),  # dashboard, records, statistics, signatures and templates
    "console.send": frozenset({"owner", "operator"}),
    "console.apply": frozenset({"owner", "operator"}),  # apply for signatures and templates
    "console.billing": frozenset({"owner", "finance"}),  # ledger, statements
    "console.keys": frozenset({"owner"}),  # API keys: create, rotate
    "console.users": frozenset({"owner"}),  # invite and remove users, login IP ranges
}
