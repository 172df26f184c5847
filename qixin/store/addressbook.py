"""SQL of the console's address book (services/addressbook.py): contact groups, contacts, memberships,
tags and taggings.

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
    tx.executemany("DELETE FROM contact_taggings WHERE contact_id = ?", [(cid,) for cid in ids])
    tx.executemany("DELETE FROM contacts WHERE id = ?", [(cid,) for cid in ids])


def contacts_page(
    tx: Tx, account_id: int, group_id: int | None, before_id: int | None, limit: int, tag_id: int | None = None
) -> list[Any]:
    """(id, number, name, fields, created_at), newest first; of one group when ``group_id`` is given, with
    one tag when ``tag_id`` is."""
    where = ["c.account_id = ?"]
    params: list[Any] = [account_id]
    join = ""
    if tag_id is not None:
        join += " JOIN contact_taggings t ON t.contact_id = c.id AND t.tag_id = ?"
    if group_id is not None:
        join += " JOIN contact_members m ON m.contact_id = c.id AND m.group_id = ?"
    params = [x for x in (tag_id, group_id) if x is not None] + params
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


# -- tags ---------------------------------------------------------------------------------------------------


def tags(tx: Tx, account_id: int) -> list[Any]:
    """(id, name, created_at, contacts) of the account's tags, by name."""
    return tx.all(
        "SELECT t.id, t.name, t.created_at, COUNT(g.contact_id) FROM contact_tags t"
        " LEFT JOIN contact_taggings g ON g.tag_id = t.id WHERE t.account_id = ?"
        " GROUP BY t.id, t.name, t.created_at ORDER BY t.name",
        (account_id,),
    )


def tag(tx: Tx, account_id: int, tag_id: int) -> Any:
    return tx.one("SELECT id, name, created_at FROM contact_tags WHERE account_id = ? AND id = ?", (account_id, tag_id))


def tag_ids(tx: Tx, account_id: int, names: Sequence[str]) -> dict[str, int]:
    """name -> tag id for those of ``names`` the account has."""
    out: dict[str, int] = {}
    for part in chunks(list(names)):
        for tid, name in tx.all(
            f"SELECT id, name FROM contact_tags WHERE account_id = ? AND name IN ({tx.in_list(part)})",
            (account_id, *part),
        ):
            out[str(name)] = int(tid)
    return out


def insert_tag(tx: Tx, account_id: int, name: str, now: int) -> int:
    r = tx.one(
        "INSERT INTO contact_tags (account_id, name, created_at) VALUES (?, ?, ?) RETURNING id", (account_id, name, now)
    )
    return int(r[0])


def delete_tag(tx: Tx, account_id: int, tag_id: int) -> bool:
    """The tag and its taggings (the contacts stay)."""
    if tag(tx, account_id, tag_id) is None:
        return False
    tx.execute("DELETE FROM contact_taggings WHERE tag_id = ?", (tag_id,))
    tx.execute("DELETE FROM contact_tags WHERE id = ?", (tag_id,))
    return True


def add_taggings(tx: Tx, pairs: Sequence[tuple[int, int]]) -> None:
    """(tag id, contact id) each; a pair already there stays once."""
    tx.executemany("INSERT INTO contact_taggings (tag_id, contact_id) VALUES (?, ?) ON CONFLICT DO NOTHING", pairs)


def remove_taggings(tx: Tx, tag_id: int, ids: Sequence[int]) -> None:
    tx.executemany("DELETE FROM contact_taggings WHERE tag_id = ? AND contact_id = ?", [(tag_id, c) for c in ids])


def tag_names_of(tx: Tx, ids: Sequence[int]) -> dict[int, list[str]]:
    """contact id -> the names of its tags."""
    out: dict[int, list[str]] = {}
    for part in chunks(list(ids)):
        for cid, name in tx.all(
            "SELECT g.contact_id, t.name FROM contact_taggings g JOIN contact_tags t ON t.id = g.tag_id"
            f" WHERE g.contact_id IN ({tx.in_list(part)}) ORDER BY t.name",
            tuple(part),
        ):
            out.setdefault(int(cid), []).append(str(name))
    return out


def tag_numbers(tx: Tx, account_id: int, tag_id: int, limit: int) -> list[str]:
    """The numbers of the contacts with a tag (at most ``limit``), oldest contact first."""
    return [
        str(r[0])
        for r in tx.all(
            "SELECT c.number FROM contact_taggings g JOIN contacts c ON c.id = g.contact_id"
            " WHERE g.tag_id = ? AND c.account_id = ? ORDER BY c.id LIMIT ?",
            (tag_id, account_id, limit),
        )
    ]
