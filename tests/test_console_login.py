"""Console users and login (services/console_users.py) on the running platform: password + SMS code sent
through the platform's own send path (read back from the carrier simulator), lockout, IP ranges, roles,
forced password change, audit."""

from __future__ import annotations

import orjson
import pytest
from console_helpers import PASSWORD, codes_received, wait_code

from qixin.domain import console_rules as rules
from qixin.errors import QxError
from qixin.services.actor import Actor
from qixin.store import staff as staff_store

PHONE = "13900001111"


async def _user(running, role: str = "owner", phone: str = PHONE) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    api = running.account()
    out = await running.platform.console_users.create_user(Actor.cli(), api.account_id, "张三", phone, role, PASSWORD)
    return api.account_id, out["user_id"]


async def _audit_actions(running) -> list[str]:  # type: ignore[no-untyped-def]
    rows = await running.platform.db.read(lambda tx: staff_store.audit_page(tx, 200))
    return [r[3] for r in rows]


async def test_password_then_sms_code_logs_in(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    account_id, uid = await _user(running)
    started = await users.login(PHONE, PASSWORD, "127.0.0.1")
    assert started.phone_masked == "139****1111"
    assert await users.session(started.token) is None  # not logged in before the code
    code = await wait_code(running.runtime, PHONE)
    with pytest.raises(QxError) as e:
        await users.verify_code(started.token, "000000" if code != "000000" else "111111", "127.0.0.1")
    assert e.value.code == "LOGIN_CODE_INVALID"
    s = await users.verify_code(started.token, code, "127.0.0.1")
    assert s.user.id == uid and s.user.account_id == account_id and s.user.must_change
    live = await users.session(started.token)
    assert live is not None and live.stage == "full"
    await users.logout(live, "127.0.0.1")
    assert await users.session(started.token) is None
    actions = await _audit_actions(running)
    for a in ("console.login_password", "console.login_failed", "console.login", "console.logout"):
        assert a in actions
    # the code was a real message of the platform's own account, billed and delivered like any other
    sent = await running.platform.db.read(lambda tx: tx.all("SELECT COUNT(*) FROM messages"))
    assert int(sent[0][0]) >= 1


async def test_lockout_after_failures_and_unlock(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    _, uid = await _user(running)
    for _ in range(running.platform.settings.console_max_failures - 1):
        with pytest.raises(QxError) as e:
            await users.login(PHONE, "wrong-password-1A", None)
        assert e.value.code == "LOGIN_FAILED"
    with pytest.raises(QxError) as e:
        await users.login(PHONE, "wrong-password-1A", None)
    assert e.value.code == "LOGIN_LOCKED" and "锁定" in e.value.message
    with pytest.raises(QxError) as e:  # even the right password is refused while locked
        await users.login(PHONE, PASSWORD, None)
    assert e.value.code == "LOGIN_LOCKED"
    assert codes_received(running.runtime, PHONE) == 0
    assert "console.locked" in await _audit_actions(running)
    await users.unlock(Actor.cli(), uid)
    started = await users.login(PHONE, PASSWORD, None)
    assert started.token


async def test_login_ip_ranges_refuse_and_audit(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    account_id, _ = await _user(running)
    await users.set_login_ranges(Actor.cli(), account_id, ["10.1.0.0/16"])
    with pytest.raises(QxError) as e:
        await users.login(PHONE, PASSWORD, "127.0.0.1")
    assert e.value.code == "LOGIN_IP_FORBIDDEN"
    rows = await running.platform.db.read(lambda tx: staff_store.audit_page(tx, 20, action="console.login_failed"))
    assert orjson.loads(rows[0][5])["reason"] == "ip"
    assert (await users.login(PHONE, PASSWORD, "10.1.2.3")).token


async def test_roles_and_owner_invites(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    account_id, owner_id = await _user(running)
    owner = Actor.console_user(owner_id, account_id, "owner")
    out = await users.create_user(owner, None, "李四", "13900002222", "viewer", PASSWORD)
    viewer = Actor.console_user(out["user_id"], account_id, "viewer")
    with pytest.raises(QxError) as e:
        await users.create_user(viewer, None, "王五", "13900003333", "owner", PASSWORD)
    assert e.value.code == "FORBIDDEN"
    with pytest.raises(QxError) as e:  # a viewer cannot send: refused in the use case
        await running.platform.console_send.send(viewer, {"to": "13900004444", "content": "你好", "signature": "企信"})
    assert e.value.code == "FORBIDDEN"
    other = running.account()
    with pytest.raises(QxError) as e:  # an owner manages only its account
        await users.create_user(owner, other.account_id, "赵六", "13900005555", "viewer", PASSWORD)
    assert e.value.code == "NOT_FOUND"
    listed = await users.listing(owner, None)
    assert [u["phone"] for u in listed] == ["139****1111", "139****2222"]
    await users.remove(owner, out["user_id"])
    with pytest.raises(QxError):
        await users.login("13900002222", PASSWORD, None)


async def test_password_rules_and_forced_change(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    api = running.account()
    with pytest.raises(QxError) as e:
        await users.create_user(Actor.cli(), api.account_id, "张三", PHONE, "owner", "short")
    assert e.value.code == "PASSWORD_WEAK"
    await users.create_user(Actor.cli(), api.account_id, "张三", PHONE, "owner", PASSWORD)
    started = await users.login(PHONE, PASSWORD, None)
    s = await users.verify_code(started.token, await wait_code(running.runtime, PHONE), None)
    assert s.user.must_change
    with pytest.raises(QxError) as e:
        await users.change_password(s, PASSWORD, "Another-Pass-13900001111", None)
    assert e.value.code == "PASSWORD_WEAK"  # contains the phone number
    await users.change_password(s, PASSWORD, "Another-Pass-2027", None)
    again = await users.session(started.token)
    assert again is not None and not again.user.must_change


async def test_staff_console_user(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    out = await users.create_staff(Actor.cli(), "审核员", "reviewer", "13900006666", PASSWORD)
    assert out["token"].startswith("qxs_")
    started = await users.login("13900006666", PASSWORD, None)
    s = await users.verify_code(started.token, await wait_code(running.runtime, "13900006666"), None)
    assert s.user.is_staff and s.user.role == "reviewer" and s.user.actor().may("review")
    await running.platform.staff_users.revoke(Actor.cli(), out["staff_id"])
    assert await users.session(started.token) is None  # a revoked staff member's console login ends


def test_rules() -> None:
    assert rules.password_problems("Qixin-Pass-2026") == []
    assert rules.password_problems("qixinpass") != []
    assert rules.ip_allowed("10.0.0.5", ["10.0.0.0/8"]) and not rules.ip_allowed("11.0.0.5", ["10.0.0.0/8"])
    assert rules.ip_allowed(None, []) and not rules.ip_allowed(None, ["10.0.0.0/8"])
    assert rules.rotation_due(0, rules.ROTATION_DAYS * rules.DAY_MS) and not rules.rotation_due(0, 1000)


async def test_staff_totp_is_asked_after_the_sms_code(running) -> None:  # type: ignore[no-untyped-def]
    import pyotp

    users = running.platform.console_users
    out = await users.create_staff(Actor.cli(), "管理员", "admin", "13900007777", PASSWORD)
    enrolled = await users.set_totp(Actor.cli(), out["staff_id"], True)
    assert enrolled["uri"].startswith("otpauth://totp/")
    rows = await running.platform.db.read(lambda tx: staff_store.audit_page(tx, 5, action="console.totp"))
    assert enrolled["totp_secret"] not in rows[0][5]  # the secret is never in the audit log
    started = await users.login("13900007777", PASSWORD, None)
    code = await wait_code(running.runtime, "13900007777")
    with pytest.raises(QxError) as e:  # the SMS code alone is not enough
        await users.verify_code(started.token, code, None, "000000")
    assert e.value.code == "LOGIN_CODE_INVALID" and "动态口令" in e.value.message
    s = await users.verify_code(started.token, code, None, pyotp.TOTP(enrolled["totp_secret"]).now())
    assert s.user.totp and s.stage == "full"


async def test_login_codes_are_rate_limited_per_phone(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    await _user(running)
    for _ in range(3):  # the platform account's limit: 3 a minute (LOGIN_CODE_LIMITS)
        await users.login(PHONE, PASSWORD, None)
    with pytest.raises(QxError) as e:
        await users.login(PHONE, PASSWORD, None)
    assert e.value.code == "RATE_LIMITED" and "登录验证码发送失败" in e.value.message


async def test_a_lock_stops_a_login_waiting_for_its_code(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    await _user(running)
    started = await users.login(PHONE, PASSWORD, None)
    code = await wait_code(running.runtime, PHONE)
    for _ in range(running.platform.settings.console_max_failures):  # someone else fails meanwhile
        with pytest.raises(QxError):
            await users.login(PHONE, "wrong-password-1A", None)
    with pytest.raises(QxError) as e:
        await users.verify_code(started.token, code, None)
    assert e.value.code == "LOGIN_LOCKED"
