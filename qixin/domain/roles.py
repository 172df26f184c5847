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
    "retention": frozenset(),  # purging message details (services/retention.py)
}
