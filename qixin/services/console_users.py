"""Console users and their login: password (argon2) + an SMS code sent through the platform's own send
path, sessions, lockout, password rules, and login IP ranges.

Rules:
- A console user is a customer's (one account, a role of ``domain/roles.CUSTOMER_ROLES``; the owner
  invites and removes users) or a staff member's (the staff row's role). The phone number is the login.
- Login is two steps. The password step checks the lock, the password and the account's login IP
  ranges, then opens a session in stage "code" and sends a 6-digit code by SMS (``ConsoleSender``). The
  code step turns the session "full". Only the SHA-256 of the session token and a digest of the code
  are stored.
- ``console_max_failures`` failures in a row (wrong password or wrong code) lock the user for
  ``console_lock_minutes``; staff (accounts.write) or the account owner can unlock earlier. A success
  resets the count.
- A new user must change the password at the first login; a password older than 90 days is reminded.
- Every login, failure, lock, logout and user change is in the audit log (failures are written even
  though the attempt is refused: the refusal is raised after the audit row commits).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from qixin.domain import console_rules as rules
from qixin.domain.numbers import mask, parse_numbers
from qixin.domain.roles import CUSTOMER_ROLES
from qixin.errors import QxError
from qixin.services.actor import Actor, UseCase, audit
from qixin.services.console_send import ConsoleSender
from qixin.services.staff import create_staff
from qixin.store import console as store
from qixin.store.db import Database, Tx, now_ms

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("qixin-no-such-user")  # keeps an unknown phone as slow as a wrong password


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_phone(phone: str) -> str:
    parsed = parse_numbers([phone])
    if not parsed.valid:
        raise QxError("INVALID_REQUEST", "手机号格式错误")
    return parsed.valid[0]


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    id: int
    kind: str  # customer | staff
    account_id: int | None
    staff_id: int | None
    name: str
    phone: str
    role: str
    must_change: bool
    password_changed_at: int
    status: str
    totp: bool = False  # staff with a TOTP authenticator enrolled: the code step also asks for it

    @classmethod
    def of(cls, r: Any) -> ConsoleUser:
        return cls(
            int(r[0]), r[1], None if r[2] is None else int(r[2]), None if r[3] is None else int(r[3]), r[4], r[5],
            r[6], bool(r[8]), int(r[11]), r[13], r[12] is not None,
        )  # fmt: skip

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    def actor(self, ip: str | None = None) -> Actor:
        if self.is_staff:
            assert self.staff_id is not None
            return Actor.staff(self.staff_id, self.role, ip, self.name)  # named as the API names them
        assert self.account_id is not None
        return Actor.console_user(self.id, self.account_id, self.role, ip)

    def public(self) -> dict[str, Any]:
        return {"user_id": self.id, "kind": self.kind, "account_id": self.account_id, "staff_id": self.staff_id,
                "name": self.name, "phone": mask(self.phone), "role": self.role, "status": self.status}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A logged-in (stage "full") or half-logged-in (stage "code") console session."""

    token_hash: str
    user: ConsoleUser
    stage: str
    csrf: str
    view_account_id: int | None = None  # a staff session viewing this account's console read-only

    def actor(self, ip: str | None = None, customer_page: bool = False) -> Actor:
        """Who acts: the user; on a customer page of a staff session that views an account, a read-only
        actor of that account (``Actor.staff_view``)."""
        if customer_page and self.user.is_staff and self.view_account_id is not None:
            assert self.user.staff_id is not None
            return Actor.staff_view(self.user.staff_id, self.view_account_id, ip, self.user.name)
        return self.user.actor(ip)

    @property
    def rotation_due(self) -> bool:
        return rules.rotation_due(self.user.password_changed_at, now_ms())


@dataclass(frozen=True, slots=True)
class LoginStarted:
    token: str  # the cookie value (shown once; only its hash is stored)
    phone_masked: str
    csrf: str


class ConsoleUsers(UseCase):
    def __init__(
        self, db: Database, sender: ConsoleSender, max_failures: int = 5, lock_minutes: int = 30,
        session_hours: float = 8.0, code_minutes: int = 5, on_change: Any = None,
    ) -> None:  # fmt: skip
        super().__init__(db, on_change)
        self.sender = sender
        self.max_failures = max_failures
        self.lock_ms = lock_minutes * 60_000
        self.session_ms = int(session_hours * 3_600_000)
        self.code_ms = code_minutes * 60_000
        self.code_minutes = code_minutes

    # -- users ----------------------------------------------------------------------------------------
    @staticmethod
    def _check_password(password: str, phone: str) -> None:
        problems = rules.password_problems(password, phone)
        if problems:
            raise QxError("PASSWORD_WEAK", "密码不符合要求：" + "；".join(problems), problems=problems)

    async def create_user(
        self, actor: Actor, account_id: int | None, name: str, phone: str, role: str, password: str
    ) -> dict[str, Any]:
        """A customer console user (must change the password at the first login). Staff (accounts.write),
        the CLI, or the account's owner (console.users) may create one."""
        if actor.is_customer:
            actor.require("console.users")
        account_id = actor.account_for(account_id, "accounts.write")
        if role not in CUSTOMER_ROLES:
            raise QxError("INVALID_REQUEST", "角色必须是 " + "、".join(CUSTOMER_ROLES) + " 之一")
        if not name.strip():
            raise QxError("INVALID_REQUEST", "用户名称不能为空")
        number = normalise_phone(phone)
        self._check_password(password, number)
        digest = await asyncio.to_thread(_hasher.hash, password)

        def job(tx: Tx) -> dict[str, Any]:
            from qixin.store import accounts as accounts_store

            if not accounts_store.account_exists(tx, account_id):
                raise QxError("NOT_FOUND", "账户不存在")
            if store.phone_taken(tx, number):
                raise QxError("CONFLICT", "该手机号已是控制台用户")
            uid = store.insert_user(tx, "customer", account_id, None, name.strip(), number, role, digest, True)
            return {"user_id": uid, "account_id": account_id, "name": name.strip(), "phone": mask(number), "role": role}

        return await self.change(actor, "console.user_create", lambda out: f"console_user:{out['user_id']}", job)

    async def create_staff(self, actor: Actor, name: str, role: str, phone: str, password: str) -> dict[str, Any]:
        """A staff member (bearer token shown once) who can also log in to the console."""
        actor.require("staff.write")
        number = normalise_phone(phone)
        self._check_password(password, number)
        digest = await asyncio.to_thread(_hasher.hash, password)

        def job(tx: Tx) -> dict[str, Any]:
            if store.phone_taken(tx, number):
                raise QxError("CONFLICT", "该手机号已是控制台用户")
            out = create_staff(tx, name, role)
            out["user_id"] = store.insert_user(tx, "staff", None, out["staff_id"], name, number, "", digest, True)
            out["phone"] = mask(number)
            return out

        return await self.change(
            actor, "staff.create", lambda out: f"staff:{out['staff_id']}", job,
            detail=lambda out: {"name": out["name"], "role": out["role"], "console_user": out["user_id"],
                                "phone": out["phone"]},
        )  # fmt: skip

    async def _user(self, user_id: int) -> ConsoleUser:
        r = await self.read(lambda tx: store.user_by_id(tx, user_id))
        if r is None:
            raise QxError("NOT_FOUND", "用户不存在")
        return ConsoleUser.of(r)

    def _may_manage(self, actor: Actor, user: ConsoleUser) -> None:
        """Staff with accounts.write (or staff.write for staff users), the CLI, or the user's account owner."""
        if actor.is_customer:
            actor.require("console.users")
            if user.account_id != actor.account_id:
                raise QxError("NOT_FOUND", "用户不存在")
            return
        actor.require("staff.write" if user.is_staff else "accounts.write")

    async def listing(self, actor: Actor, account_id: int | None) -> list[dict[str, Any]]:
        """An account's console users (staff: any account; None lists the staff users)."""
        if actor.is_customer:
            actor.require("console.read")
            account_id = actor.account_id
        else:
            actor.require("staff.write" if account_id is None else "accounts.read")
        rows = await self.read(lambda tx: store.users(tx, account_id))
        out = []
        now = now_ms()
        for r in rows:
            item = ConsoleUser.of(r).public()
            item["locked"] = int(r[10]) > now
            out.append(item)
        return out

    async def remove(self, actor: Actor, user_id: int) -> dict[str, Any]:
        user = await self._user(user_id)
        self._may_manage(actor, user)
        if actor.is_customer and actor.id == f"user:{user_id}":
            raise QxError("INVALID_REQUEST", "不能移除自己")

        def job(tx: Tx) -> dict[str, Any]:
            store.set_status(tx, user_id, "removed")
            store.delete_user_sessions(tx, user_id)
            return {"user_id": user_id, "status": "removed"}

        return await self.change(actor, "console.user_remove", f"console_user:{user_id}", job)

    async def unlock(self, actor: Actor, user_id: int) -> dict[str, Any]:
        user = await self._user(user_id)
        self._may_manage(actor, user)

        def job(tx: Tx) -> dict[str, Any]:
            store.set_failures(tx, user_id, 0, 0)
            return {"user_id": user_id, "locked": False}

        return await self.change(actor, "console.user_unlock", f"console_user:{user_id}", job)

    async def set_login_ranges(self, actor: Actor, account_id: int | None, ranges: list[str]) -> dict[str, Any]:
        """Bind the account's console logins to IP ranges (empty: anywhere)."""
        if actor.is_customer:
            actor.require("console.users")
        account_id = actor.account_for(account_id, "accounts.write")
        try:
            parsed = rules.parse_ranges(ranges)
        except ValueError as e:
            raise QxError("INVALID_REQUEST", f"IP 范围格式错误：{e}") from None

        def job(tx: Tx) -> dict[str, Any]:
            store.set_login_ranges(tx, account_id, parsed)
            return {"account_id": account_id, "ranges": list(parsed)}

        return await self.change(actor, "console.login_ranges", f"account:{account_id}", job)

    async def login_ranges(self, actor: Actor, account_id: int | None = None) -> list[str]:
        account_id = actor.account_for(account_id)
        return list(await self.read(lambda tx: store.login_ranges(tx, account_id)))

    async def set_totp(self, actor: Actor, staff_id: int, enabled: bool) -> dict[str, Any]:
        """Enrol (a new secret, shown once as an otpauth:// URI) or remove a staff user's TOTP."""
        actor.require("staff.write")
        r = await self.read(lambda tx: store.user_by_staff(tx, staff_id))
        if r is None:
            raise QxError("NOT_FOUND", "该员工没有控制台登录")
        user = ConsoleUser.of(r)
        secret = pyotp.random_base32() if enabled else None
        await self.change(
            actor, "console.totp", f"console_user:{user.id}", lambda tx: store.set_totp(tx, user.id, secret),
            detail=lambda _: {"staff_id": staff_id, "enabled": enabled},
        )  # fmt: skip
        out: dict[str, Any] = {"staff_id": staff_id, "user_id": user.id, "totp": enabled}
        if secret is not None:
            out["totp_secret"] = secret
            out["uri"] = pyotp.TOTP(secret).provisioning_uri(name=user.name, issuer_name="qixin")
        return out

    # -- login ----------------------------------------------------------------------------------------
    async def _failure(self, user: ConsoleUser | None, ip: str | None, reason: str, phone: str) -> QxError:
        """Count a failure (locking at the limit) and audit it; the error to raise afterwards."""
        now = now_ms()

        def job(tx: Tx) -> bool:
            who = user.actor(ip) if user else Actor("anonymous", mask(phone), ip=ip)
            locked = False
            if user is not None:
                r = store.user_by_id(tx, user.id)
                count = int(r[9]) + 1
                locked = count >= self.max_failures
                store.set_failures(tx, user.id, 0 if locked else count, now + self.lock_ms if locked else int(r[10]))
            target = f"console_user:{user.id}" if user else ""
            audit(tx, who, "console.login_failed", target, {"reason": reason, "phone": mask(phone)})
            if locked:
                audit(tx, who, "console.locked", target, {"minutes": self.lock_ms // 60_000})
            return locked

        locked = await self.db.write(job)
        if locked:
            return self._locked_error(now + self.lock_ms)
        if reason == "code":
            return QxError("LOGIN_CODE_INVALID")
        if reason == "totp":
            return QxError("LOGIN_CODE_INVALID", "动态口令错误")
        if reason == "ip":
            return QxError("LOGIN_IP_FORBIDDEN", f"当前 IP（{ip}）不在账户允许的登录范围内，已记录")
        return QxError("LOGIN_FAILED")

    def _locked_error(self, until: int) -> QxError:
        minutes = max(1, -(-(until - now_ms()) // 60_000))
        return QxError(
            "LOGIN_LOCKED",
            f"登录失败次数过多，账号已锁定，请 {minutes} 分钟后再试，或联系管理员解锁",
            minutes=minutes,
        )

    async def login(self, phone: str, password: str, ip: str | None) -> LoginStarted:
        """The password step: on success a session waiting for the SMS code (sent now)."""
        try:
            number = normalise_phone(phone)
        except QxError:
            raise QxError("LOGIN_FAILED") from None
        r = await self.read(lambda tx: store.user_by_phone(tx, number))
        user = ConsoleUser.of(r) if r is not None and ConsoleUser.of(r).status == "active" else None
        if user is not None and int(r[10]) > now_ms():
            await self.db.write(
                lambda tx: audit(tx, user.actor(ip), "console.login_failed", f"console_user:{user.id}",
                                 {"reason": "locked", "phone": mask(number)})
            )  # fmt: skip
            raise self._locked_error(int(r[10]))
        try:
            await asyncio.to_thread(_hasher.verify, r[7] if user else _DUMMY_HASH, password)
            ok = user is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            raise await self._failure(user, ip, "password", number)
        assert user is not None
        if user.account_id is not None:
            account_id = user.account_id
            ranges = await self.read(lambda tx: store.login_ranges(tx, account_id))
            if not rules.ip_allowed(ip, ranges):
                raise await self._failure(user, ip, "ip", number)
        token = secrets.token_urlsafe(32)
        h = token_hash(token)
        code = f"{secrets.randbelow(1_000_000):06d}"
        csrf = secrets.token_urlsafe(24)
        now = now_ms()

        def job(tx: Tx) -> None:
            store.purge_sessions(tx, now)
            store.insert_session(tx, h, user.id, "code", csrf, rules.code_digest(h, code), now + self.code_ms, ip,
                                 now + self.code_ms)  # fmt: skip
            audit(tx, user.actor(ip), "console.login_password", f"console_user:{user.id}", {"phone": mask(number)})

        await self.db.write(job)
        try:
            await self.sender.send_login_code(number, rules.login_code_text(code, self.code_minutes))
        except QxError as e:  # e.g. the recipient's frequency limit: say so, the session is useless
            await self.db.write(lambda tx: store.delete_session(tx, h))
            raise QxError(e.code, f"登录验证码发送失败：{e.message}") from None
        return LoginStarted(token, mask(number), csrf)

    async def verify_code(self, token: str, code: str, ip: str | None, totp: str = "") -> ConsoleSession:
        """The code step (SMS code, and the TOTP of a staff user who enrolled one): the session becomes a login."""
        pending = await self.session(token, stage="code")
        if pending is None:
            raise QxError("SESSION_EXPIRED")
        user = pending.user
        r = await self.read(lambda tx: store.session_row(tx, pending.token_hash))
        if r is None:
            raise QxError("SESSION_EXPIRED")
        if int(r[5]) >= self.max_failures:
            raise QxError("LOGIN_CODE_INVALID", "验证码错误次数过多，请重新登录")
        locked_until = int((await self.read(lambda tx: store.user_by_id(tx, user.id)))[10])
        if locked_until > now_ms():  # locked meanwhile (failures elsewhere): the code no longer helps
            raise self._locked_error(locked_until)
        if int(r[4]) < now_ms() or not secrets.compare_digest(r[3] or "", rules.code_digest(pending.token_hash, code)):
            await self.db.write(lambda tx: store.session_attempt(tx, pending.token_hash))
            raise await self._failure(user, ip, "code", user.phone)
        if user.totp:
            u = await self.read(lambda tx: store.user_by_id(tx, user.id))
            if not (u[12] and pyotp.TOTP(u[12]).verify(totp.strip(), valid_window=1)):
                await self.db.write(lambda tx: store.session_attempt(tx, pending.token_hash))
                raise await self._failure(user, ip, "totp", user.phone)
        expires = now_ms() + self.session_ms

        def job(tx: Tx) -> None:
            store.promote_session(tx, pending.token_hash, expires)
            store.set_failures(tx, user.id, 0, 0)
            audit(tx, user.actor(ip), "console.login", f"console_user:{user.id}", {"phone": mask(user.phone)})

        await self.db.write(job)
        return ConsoleSession(pending.token_hash, user, "full", pending.csrf)

    async def session(self, token: str | None, stage: str = "full") -> ConsoleSession | None:
        """The live session of this cookie token in ``stage`` (None: none, expired, user removed)."""
        if not token:
            return None
        h = token_hash(token)

        def q(tx: Tx) -> Any:
            s = store.session_row(tx, h)
            return (s, store.user_by_id(tx, int(s[0]))) if s else None

        got = await self.read(q)
        if got is None or got[1] is None:
            return None
        s, u = got
        user = ConsoleUser.of(u)
        if s[1] != stage or int(s[6]) < now_ms() or user.status != "active":
            return None
        return ConsoleSession(h, user, s[1], s[2], None if s[7] is None or not user.is_staff else int(s[7]))

    # -- staff: the read-only view of a customer's console -------------------------------------------------
    async def start_view(self, session: ConsoleSession, account_id: int, ip: str | None) -> dict[str, Any]:
        """A staff member (accounts.read) views ``account_id``'s console read-only in this session: audited
        (``console.view_start``); every change in that view is refused (READ_ONLY)."""
        if not session.user.is_staff:
            raise QxError("FORBIDDEN", "只有员工可以只读查看客户控制台")
        actor = session.user.actor(ip)
        actor.require("accounts.read")

        def job(tx: Tx) -> dict[str, Any]:
            from qixin.store import accounts as accounts_store

            if not accounts_store.account_exists(tx, account_id):
                raise QxError("NOT_FOUND", "账户不存在")
            store.set_session_view(tx, session.token_hash, account_id)
            audit(tx, actor, "console.view_start", f"account:{account_id}", {"account_id": account_id})
            return {"account_id": account_id}

        return await self.db.write(job)

    async def stop_view(self, session: ConsoleSession, ip: str | None) -> dict[str, Any]:
        """End the read-only view (audited ``console.view_stop``); nothing to end is not an error."""
        account_id = session.view_account_id

        def job(tx: Tx) -> dict[str, Any]:
            store.set_session_view(tx, session.token_hash, None)
            if account_id is not None:
                audit(tx, session.user.actor(ip), "console.view_stop", f"account:{account_id}",
                      {"account_id": account_id})  # fmt: skip
            return {"account_id": account_id}

        return await self.db.write(job)

    async def logout(self, session: ConsoleSession, ip: str | None) -> None:
        def job(tx: Tx) -> None:
            store.delete_session(tx, session.token_hash)
            if session.view_account_id is not None:  # logging out ends the read-only view too
                audit(tx, session.user.actor(ip), "console.view_stop", f"account:{session.view_account_id}",
                      {"account_id": session.view_account_id, "by": "logout"})  # fmt: skip
            audit(tx, session.user.actor(ip), "console.logout", f"console_user:{session.user.id}")

        await self.db.write(job)

    async def change_password(self, session: ConsoleSession, old: str, new: str, ip: str | None) -> None:
        user = session.user
        r = await self.read(lambda tx: store.user_by_id(tx, user.id))
        try:
            await asyncio.to_thread(_hasher.verify, r[7], old)
        except (VerificationError, InvalidHashError):
            raise QxError("LOGIN_FAILED", "原密码错误") from None
        if old == new:
            raise QxError("PASSWORD_WEAK", "新密码不能与原密码相同")
        self._check_password(new, user.phone)
        digest = await asyncio.to_thread(_hasher.hash, new)

        def job(tx: Tx) -> None:
            store.set_password(tx, user.id, digest, False)
            store.delete_user_sessions(tx, user.id, keep=session.token_hash)  # other logins end
            audit(tx, user.actor(ip), "console.password_change", f"console_user:{user.id}")

        await self.db.write(job)
