"""SQL of the console's address book (services/addressbook.py): contact groups, contacts, memberships.

Every query is scoped by ``account_id``: a group or contact id of another account matches nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx, chunks


def groups(tx: Tx, account_id: int) -> list[Any]:
    """(id, name, created_at, members) of the account's groups, by name."""
    return tx.all(
        "SELECT g.id, g.name, g.created_at, COUNT(m.contact_id) FROM contact_groups g"
        " LEFT JOIN contact_members m ON m.group_id = g.id WHERE g.account_id = ?"
        " GROUP BY g.id, g.name, g.created_at ORDER BY g.name",
        (account_id,),
    )


def group(tx: Tx, account_id: int, group_id: int) -> Any:
    return tx.one(
        "SELECT id, name, created_at FROM contact_groups WHERE account_id = ? AND id = ?", (account_id, group_id)
    )


def group_named(tx: Tx, account_id: int, name: str) -> int | None:
    r = tx.one("SELECT id FROM contact_groups WHERE account_id = ? AND name = ?", (account_id, name))
    return int(r[0]) if r else None


def insert_group(tx: Tx, account_id: int, name: str, now: int) -> int:
    r = tx.one(
        "INSERT INTO contact_groups (account_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
        (account_id, name, now),
    )
    return int(r[0])


def delete_group(tx: Tx, account_id: int, group_id: int) -> bool:
    """The group and its memberships (the contacts stay)."""
    if group(tx, account_id, group_id) is None:
        return False
    tx.execute("DELETE FROM contact_members WHERE group_id = ?", (group_id,))
    tx.execute("DELETE FROM contact_groups WHERE id = ?", (group_id,))
    return True


def contact_ids(tx: Tx, account_id: int, numbers: Sequence[str]) -> dict[str, int]:
    """number -> contact id for those of ``numbers`` the account has."""
    out: dict[str, int] = {}
    for part in chunks(list(numbers)):
        for cid, number in tx.all(
            f"SELECT id, number FROM contacts WHERE account_id = ? AND number IN ({tx.in_list(part)})",
            (account_id, *part),
        ):
            out[str(number)] = int(cid)
    return out


def insert_contacts(tx: Tx, account_id: int, rows: Sequence[tuple[str, str, str]], now: int) -> None:
    """New contacts: (number, name, fields JSON) each."""
    tx.executemany(
        "INSERT INTO contacts (account_id, number, name, fields, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(account_id, n, name, fields, now, now) for n, name, fields in rows],
    )


def update_contacts(tx: Tx, rows: Sequence[tuple[int, str, str]], now: int) -> None:
    """(contact id, name, fields JSON) each."""
    tx.executemany(
        "UPDATE contacts SET name = ?, fields = ?, updated_at = ? WHERE id = ?",
        [(name, fields, now, cid) for cid, name, fields in rows],
    )


def add_members(tx: Tx, group_id: int, ids: Sequence[int]) -> None:
    tx.executemany(
        "INSERT INTO contact_members (group_id, contact_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(group_id, cid) for cid in ids],
    )


def owned_contacts(tx: Tx, account_id: int, ids: Sequence[int]) -> list[int]:
    """Those of ``ids`` that are the account's contacts."""
    out: list[int] = []
    for part in chunks(list(ids)):
        out += [
            int(r[0])
            for r in tx.all(
                f"SELECT id FROM contacts WHERE account_id = ? AND id IN ({tx.in_list(part)})", (account_id, *part)
            )
        ]
    return out


def remove_members(tx: Tx, group_id: int, ids: Sequence[int]) -> None:
    tx.executemany(
        "DELETE FROM contact_members WHERE group_id = ? AND contact_id = ?", [(group_id, cid) for cid in ids]
    )


def delete_contacts(tx: Tx, ids: Sequence[int]) -> None:
    """Contacts (already checked to be the account's) and their memberships."""
    tx.executemany("DELETE FROM contact_members WHERE contact_id = ?", [(cid,) for cid in ids])
    tx.executemany("DELETE FROM contacts WHERE id = ?", [(cid,) for cid in ids])


def contacts_page(tx: Tx, account_id: int, group_id: int | None, before_id: int | None, limit: int) -> list[Any]:
    """(id, number, name, fields, created_at), newest first; of one group when ``group_id`` is given."""
    where = ["c.account_id = ?"]
    params: list[Any] = [account_id]
    join = ""
    if group_id is not None:
        join = " JOIN contact_members m ON m.contact_id = c.id AND m.group_id = ?"
        params.insert(0, group_id)
    if before_id is not None:
        where.append("c.id < ?")
        params.append(before_id)
    return tx.all(
        f"SELECT c.id, c.number, c.name, c.fields, c.created_at FROM contacts c{join}"
        f" WHERE {' AND '.join(where)} ORDER BY c.id DESC LIMIT ?",
        (*params, limit),
    )


def count_contacts(tx: Tx, account_id: int) -> int:
    return int(tx.one("SELECT COUNT(*) FROM contacts WHERE account_id = ?", (account_id,))[0])


def group_names_of(tx: Tx, ids: Sequence[int]) -> dict[int, list[str]]:
    """contact id -> the names of its groups."""
    out: dict[int, list[str]] = {}
    for part in chunks(list(ids)):
        for cid, name in tx.all(
            "SELECT m.contact_id, g.name FROM contact_members m JOIN contact_groups g ON g.id = m.group_id"
            f" WHERE m.contact_id IN ({tx.in_list(part)}) ORDER BY g.name",
            tuple(part),
        ):
            out.setdefault(int(cid), []).append(str(name))
    return out


def group_numbers(tx: Tx, account_id: int, group_id: int, limit: int) -> list[str]:
    """The numbers of a group's contacts (at most ``limit``), oldest contact first."""
    return [
        str(r[0])
        for r in tx.all(
            "SELECT c.number FROM contact_members m JOIN contacts c ON c.id = m.contact_id"
            " WHERE m.group_id = ? AND c.account_id = ? ORDER BY c.id LIMIT ?",
            (group_id, account_id, limit),
        )
    ]
