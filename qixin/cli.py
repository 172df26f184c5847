"""The ``qixin`` command line (typer). Every command takes ``--data-dir``; QIXIN_DATABASE_URL switches
to PostgreSQL. Operator-facing text is Chinese first."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from qixin.errors import QxError
from qixin.settings import Settings, load_settings

app = typer.Typer(help="企信 qixin 企业短信平台", no_args_is_help=True, add_completion=False)
account_app = typer.Typer(help="客户账户", no_args_is_help=True)
signature_app = typer.Typer(help="短信签名", no_args_is_help=True)
template_app = typer.Typer(help="短信模板", no_args_is_help=True)
key_app = typer.Typer(help="API 密钥", no_args_is_help=True)
billing_app = typer.Typer(help="计费", no_args_is_help=True)
simulator_app = typer.Typer(help="运营商网关模拟器", no_args_is_help=True)
staff_app = typer.Typer(help="平台员工（管理接口令牌）", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
app.add_typer(account_app, name="account")
app.add_typer(signature_app, name="signature")
app.add_typer(template_app, name="template")
app.add_typer(key_app, name="key")
app.add_typer(billing_app, name="billing")
app.add_typer(simulator_app, name="simulator")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="数据目录（默认 ./data 或 QIXIN_DATA_DIR）")]
AsJson = Annotated[bool, typer.Option("--json", help="以 JSON 输出")]


def _fail(err: QxError) -> None:
    typer.echo(json.dumps(err.to_dict(), ensure_ascii=False), err=True)
    raise typer.Exit(code=2)


def _db(settings: Settings) -> Any:
    from qixin.store.db import Database
    from qixin.store.migrate import migrate

    migrate(settings.db_url)
    return Database(settings.db_url)


def _write(data_dir: Path | None, job: Any) -> Any:
    db = _db(load_settings(data_dir))
    try:
        return db.write_sync(job)
    except QxError as e:
        _fail(e)
    finally:
        db.close()


def _out(data: dict[str, Any], as_json: bool, human: str) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False) if as_json else human)


@app.command()
def run(
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP 端口")] = 8000,
    data_dir: DataDir = None,
) -> None:
    """启动嵌入式平台：迁移数据库、启动 SMPP 模拟器通道、HTTP 接口与控制台。"""
    import uvicorn

    from qixin.api.app import create_api
    from qixin.app import Platform

    settings = load_settings(data_dir, host=host, port=port)
    platform = Platform(settings)
    api = create_api(platform)
    where = "PostgreSQL" if not settings.is_sqlite else f"SQLite {settings.db_url.split('///', 1)[1]}"
    typer.echo(f"企信 qixin 启动中 · 数据库：{where}")
    typer.echo(f"控制台：http://{host}:{port}/    接口文档：http://{host}:{port}/docs")
    typer.echo(
        "创建客户账户（获取 app_key / app_secret）：\n"
        "  qixin account create --name 测试客户 --signature 企信 --balance 100 --price 0.035 --json"
        + (f" --data-dir {data_dir}" if data_dir else "")
    )
    config = uvicorn.Config(api, host=host, port=port, log_level="warning", access_log=False, loop="auto")
    uvicorn.Server(config).run()


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """把数据库升级到最新结构。"""
    from qixin.store.migrate import migrate as do_migrate

    s = load_settings(data_dir)
    do_migrate(s.db_url)
    typer.echo("数据库已是最新结构")


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Option(help="客户名称")],
    signature: Annotated[str, typer.Option(help="已审核通过的签名（不含【】）")],
    balance: Annotated[str, typer.Option(help="开户充值金额（元）")] = "0",
    price: Annotated[str, typer.Option(help="每计费条单价（元），如 0.035")] = "0.035",
    callback_url: Annotated[str | None, typer.Option(help="状态报告推送地址")] = None,
    no_free_text: Annotated[bool, typer.Option("--no-free-text", help="只允许模板发送")] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """创建客户账户：签名（已审核）、开户充值、一对 API 密钥。"""
    from qixin.services.accounts import create_account
    from qixin.services.billing import yuan_to_li

    try:
        bal, pr = yuan_to_li(balance), yuan_to_li(price)
    except QxError as e:
        _fail(e)
        return
    out = _write(
        data_dir,
        lambda tx: create_account(tx, name, signature, bal, pr, callback_url, allow_free_text=not no_free_text),
    )
    _out(
        out,
        as_json,
        f"账户 {out['account_id']} 已创建\nAppKey: {out['app_key']}\nAppSecret: {out['app_secret']}",
    )


@account_app.command("topup")
def account_topup(
    account_id: Annotated[int, typer.Argument(help="账户 ID")],
    amount: Annotated[str, typer.Option(help="充值金额（元）")],
    ref: Annotated[str | None, typer.Option(help="充值单号（同一单号只入账一次）")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """给账户充值（写入账本）。"""
    import secrets

    from qixin.services.billing import li_to_yuan, topup, yuan_to_li

    try:
        li = yuan_to_li(amount)
    except QxError as e:
        _fail(e)
        return
    reference = ref or f"cli-{secrets.token_hex(6)}"
    bal = _write(data_dir, lambda tx: topup(tx, account_id, li, reference, "运营充值"))
    _out({"account_id": account_id, "balance_li": bal}, as_json, f"充值成功，当前余额 {li_to_yuan(bal)} 元")


@signature_app.command("add")
def signature_add(
    account: Annotated[int, typer.Option(help="账户 ID")],
    name: Annotated[str, typer.Option(help="签名名称（不含【】）")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """提交签名申请（待审核）。"""
    from qixin.services.accounts import add_signature

    sid = _write(data_dir, lambda tx: add_signature(tx, account, name))
    _out({"signature_id": sid, "status": "pending"}, as_json, f"签名申请 {sid} 已提交，等待审核")


def _review(table: str, item_id: int, approve: bool, reason: str | None, data_dir: Path | None) -> None:
    from qixin.services.accounts import review

    _write(data_dir, lambda tx: review(tx, table, item_id, approve, reason))
    typer.echo(("已通过" if approve else "已驳回") + f"：{item_id}")


@signature_app.command("approve")
def signature_approve(signature_id: int, data_dir: DataDir = None) -> None:
    """审核通过签名。"""
    _review("signatures", signature_id, True, None, data_dir)


@signature_app.command("reject")
def signature_reject(
    signature_id: int, reason: Annotated[str, typer.Option(help="驳回原因")], data_dir: DataDir = None
) -> None:
    """驳回签名。"""
    _review("signatures", signature_id, False, reason, data_dir)


@template_app.command("add")
def template_add(
    account: Annotated[int, typer.Option(help="账户 ID")],
    name: Annotated[str, typer.Option(help="模板名称")],
    category: Annotated[str, typer.Option(help="verification / notification / marketing")],
    content: Annotated[str, typer.Option(help="模板内容，变量写作 ${name}")],
    var: Annotated[list[str] | None, typer.Option(help="变量类型 name=type，如 code=code")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """提交模板申请（待审核）。"""
    from qixin.services.accounts import add_template

    variables: dict[str, Any] = {}
    for item in var or []:
        k, _, v = item.partition("=")
        variables[k.strip()] = v.strip() or "text"
    tid = _write(data_dir, lambda tx: add_template(tx, account, name, category, content, variables))
    _out({"template_id": tid, "status": "pending"}, as_json, f"模板申请 {tid} 已提交，等待审核")


@template_app.command("approve")
def template_approve(template_id: int, data_dir: DataDir = None) -> None:
    """审核通过模板。"""
    _review("templates", template_id, True, None, data_dir)


@template_app.command("reject")
def template_reject(
    template_id: int, reason: Annotated[str, typer.Option(help="驳回原因")], data_dir: DataDir = None
) -> None:
    """驳回模板。"""
    _review("templates", template_id, False, reason, data_dir)


@key_app.command("callback")
def key_callback(
    app_key: str,
    url: Annotated[str, typer.Argument(help="推送地址；空字符串表示关闭")],
    data_dir: DataDir = None,
) -> None:
    """设置密钥的状态报告推送地址。"""
    from qixin.services.accounts import set_callback

    _write(data_dir, lambda tx: set_callback(tx, app_key, url or None))
    typer.echo("推送地址已更新")


@key_app.command("allow-ip")
def key_allow_ip(
    app_key: str,
    ips: Annotated[list[str], typer.Argument(help="允许的 IP 或网段；不填表示不限")],
    data_dir: DataDir = None,
) -> None:
    """设置密钥的 IP 白名单。"""
    from qixin.services.accounts import set_ip_allowlist

    _write(data_dir, lambda tx: set_ip_allowlist(tx, app_key, ips))
    typer.echo("IP 白名单已更新")


@staff_app.command("create")
def staff_create(
    name: Annotated[str, typer.Option(help="员工名称")],
    role: Annotated[str, typer.Option(help="admin / reviewer / finance / ops")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """创建员工并发放管理接口令牌（只显示一次）。"""
    from qixin.services.staff import create_staff

    out = _write(data_dir, lambda tx: create_staff(tx, name, role))
    _out(out, as_json, f"员工 {out['name']}（{out['role']}）已创建\n令牌（只显示一次）：{out['token']}")


@billing_app.command("verify")
def billing_verify(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """核对每个账户的余额是否等于账本合计。"""
    from qixin.store.db import Tx

    def job(tx: Tx) -> list[dict[str, Any]]:
        rows = tx.all(
            "SELECT a.id, a.balance_li, COALESCE((SELECT SUM(l.amount_li) FROM ledger l WHERE l.account_id = a.id), 0)"
            " FROM accounts a ORDER BY a.id"
        )
        return [{"account_id": r[0], "balance_li": int(r[1]), "ledger_li": int(r[2])} for r in rows]

    rows = _write(data_dir, job)
    bad = [r for r in rows if r["balance_li"] != r["ledger_li"]]
    if as_json:
        typer.echo(json.dumps({"accounts": len(rows), "mismatches": bad}, ensure_ascii=False))
    else:
        typer.echo(f"核对 {len(rows)} 个账户：" + ("全部一致" if not bad else f"{len(bad)} 个不一致"))
        for r in bad:
            typer.echo(f"  账户 {r['account_id']}：余额 {r['balance_li']} 厘，账本合计 {r['ledger_li']} 厘")
    if bad:
        raise typer.Exit(code=1)


@simulator_app.command("smpp")
def simulator_smpp(
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="监听端口")] = 2775,
    delay_min: Annotated[float, typer.Option(help="状态报告最短延迟（秒）")] = 0.05,
    delay_max: Annotated[float, typer.Option(help="状态报告最长延迟（秒）")] = 0.5,
) -> None:
    """单独运行 SMPP 短信中心模拟器。"""
    from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator

    async def main() -> None:
        sim = SmppSimulator(host, port, SimulatorConfig(receipt_delay=(delay_min, delay_max)))
        bound = await sim.start()
        typer.echo(f"SMPP 模拟器已启动：{host}:{bound}")
        try:
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def main() -> None:
    try:
        app()
    except QxError as e:  # pragma: no cover - safety net
        typer.echo(json.dumps(e.to_dict(), ensure_ascii=False), err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
