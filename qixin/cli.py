"""The ``qixin`` command line (typer). Every command takes ``--data-dir``; QIXIN_DATABASE_URL switches
to PostgreSQL. Operator-facing text is Chinese first."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from qixin.errors import QxError
from qixin.services.actor import Actor
from qixin.settings import Settings, load_settings

if TYPE_CHECKING:
    from qixin.app import Services

T = TypeVar("T")

app = typer.Typer(help="企信 qixin 企业短信平台", no_args_is_help=True, add_completion=False)
account_app = typer.Typer(help="客户账户", no_args_is_help=True)
signature_app = typer.Typer(help="短信签名", no_args_is_help=True)
template_app = typer.Typer(help="短信模板", no_args_is_help=True)
key_app = typer.Typer(help="API 密钥", no_args_is_help=True)
billing_app = typer.Typer(help="计费", no_args_is_help=True)
simulator_app = typer.Typer(help="运营商网关模拟器", no_args_is_help=True)
stats_app = typer.Typer(help="统计：核对与重建", no_args_is_help=True)
retention_app = typer.Typer(help="数据保留：清理过期短信明细", no_args_is_help=True)
exports_app = typer.Typer(help="导出任务：大批量导出短信记录到文件", no_args_is_help=True)
staff_app = typer.Typer(help="平台员工（管理接口令牌）", no_args_is_help=True)
user_app = typer.Typer(help="客户控制台用户（手机号 + 密码 + 短信验证码登录）", no_args_is_help=True)
channels_app = typer.Typer(help="通道：列表、新建、修改、启停（运行中的平台数秒内生效）", invoke_without_command=True)
app.add_typer(channels_app, name="channels")
app.add_typer(staff_app, name="staff")
app.add_typer(user_app, name="user")
app.add_typer(account_app, name="account")
app.add_typer(signature_app, name="signature")
app.add_typer(template_app, name="template")
app.add_typer(key_app, name="key")
app.add_typer(billing_app, name="billing")
app.add_typer(simulator_app, name="simulator")
app.add_typer(stats_app, name="stats")
numbers_app = typer.Typer(help="号码服务：空号检测", no_args_is_help=True)
app.add_typer(numbers_app, name="numbers")
alerts_app = typer.Typer(help="告警：历史、确认、规则", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
connection_app = typer.Typer(help="账号直连：客户 SMPP / CMPP / SGIP / SMGP 登录账号", no_args_is_help=True)
app.add_typer(connection_app, name="connection")
app.add_typer(retention_app, name="retention")
app.add_typer(exports_app, name="exports")
classifier_app = typer.Typer(help="内容分类器：用语料与人工审核结论重新训练", no_args_is_help=True)
app.add_typer(classifier_app, name="classifier")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="数据目录（默认 ./data 或 QIXIN_DATA_DIR）")]
AsJson = Annotated[bool, typer.Option("--json", help="以 JSON 输出")]
SmppPort = Annotated[
    int | None, typer.Option("--smpp-port", help="客户 SMPP 端口（默认 2775 或 QIXIN_SMPP_SERVER_PORT；0 关闭）")
]
CmppPort = Annotated[
    int | None, typer.Option("--cmpp-port", help="客户 CMPP 端口（默认 7890 或 QIXIN_CMPP_SERVER_PORT；0 关闭）")
]


def _fail(err: QxError) -> None:
    typer.echo(json.dumps(err.to_dict(), ensure_ascii=False), err=True)
    raise typer.Exit(code=2)


def _services(data_dir: Path | None, **overrides: Any) -> Services:
    """The platform's services (``app.build``) on a migrated database; nothing started."""
    from qixin.app import build
    from qixin.store.migrate import migrate as do_migrate

    settings = load_settings(data_dir, **overrides)
    do_migrate(settings.db_url)
    return build(settings)


def _call(data_dir: Path | None, fn: Callable[[Services], Coroutine[Any, Any, T]]) -> T:
    """Run one use case as the operator at the command line; a refusal prints its code and exits 2."""
    services = _services(data_dir)
    try:
        return asyncio.run(fn(services))
    except QxError as e:
        _fail(e)
        raise
    finally:
        services.db.close()


def _db(settings: Settings) -> Any:
    from qixin.store.db import Database
    from qixin.store.migrate import migrate

    migrate(settings.db_url)
    return Database(settings.db_url)


def _write(data_dir: Path | None, job: Any) -> Any:
    """A read or a transaction that changes nothing worth auditing (listings, checks)."""
    db = _db(load_settings(data_dir))
    try:
        return db.write_sync(job)
    except QxError as e:
        _fail(e)
    finally:
        db.close()


def _out(data: dict[str, Any], as_json: bool, human: str) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False) if as_json else human)


def _qixin() -> str:
    """How to call this command again (the venv's qixin is not on the PATH after ``make run``)."""
    exe = Path(sys.argv[0])
    return str(exe) if exe.name == "qixin" and exe.parent != Path() else "qixin"


def _print_ports(settings: Settings, data_dir: Path | None) -> None:
    """The customer ports this process will open (a port that is taken is reported when it starts) and how
    to create a direct-connection login."""
    import socket

    host = settings.ports_host or settings.host
    opened = []
    for name, number in (
        ("SMPP", settings.smpp_server_port), ("CMPP", settings.cmpp_server_port), ("SGIP", settings.sgip_server_port),
        ("SMGP", settings.smgp_server_port),
    ):  # fmt: skip
        if not number:
            continue
        with socket.socket() as sock:
            taken = sock.connect_ex((host if host not in ("0.0.0.0", "::") else "127.0.0.1", number)) == 0
        note = "（端口已被占用，此端口不开启，其余照常运行）" if taken else ""
        typer.echo(f"客户 {name} 端口：{host}:{number}{note}")
        opened.append(name.lower())
    if opened:
        typer.echo(
            "创建直连账号（客户用自己的 SMPP / CMPP / SGIP / SMGP 客户端登录），在另一个终端运行：\n"
            f"  {_qixin()} connection add --account 1 --protocol {opened[0]} --login "
            + ("901234" if opened[0] == "cmpp" else "cust01")
            + " --secret s3cret --json"
            + (f" --data-dir {data_dir}" if data_dir else "")
        )


def _serve(application: Any, host: str, port: int, trusted_proxies: tuple[str, ...], reuse_port: bool = False) -> None:
    from qixin.api.server import Server, listen_socket, server_config

    server = Server(server_config(application, host, port, trusted_proxies, loop="auto"))
    # with SO_REUSEPORT several processes bind the same port and the kernel spreads connections over them
    server.run(sockets=[listen_socket(host, port, reuse_port=True)] if reuse_port else None)


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="监听地址（默认 127.0.0.1 或 QIXIN_HOST）")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP 端口（默认 8000 或 QIXIN_PORT）")] = None,
    data_dir: DataDir = None,
    smpp_port: SmppPort = None,
    cmpp_port: CmppPort = None,
) -> None:
    """启动嵌入式平台：迁移数据库，启动四个运营商网关模拟器（CMPP、SGIP、SMGP、SMPP）及其通道、调度、
    HTTP 接口与控制台。"""
    from qixin.api.app import asgi_app
    from qixin.app import build, embedded

    settings = load_settings(data_dir, host=host, port=port, smpp_server_port=smpp_port, cmpp_server_port=cmpp_port)
    host, port = settings.host, settings.port
    services = build(settings)
    where = "PostgreSQL" if not settings.is_sqlite else f"SQLite {settings.db_url.split('///', 1)[1]}"
    typer.echo(f"企信 qixin 启动中 · 数据库：{where}")
    typer.echo(f"控制台：http://{host}:{port}/    接口文档：http://{host}:{port}/docs")
    dd = f" --data-dir {data_dir}" if data_dir else ""
    typer.echo(
        "创建客户账户（获取 app_key / app_secret），在另一个终端运行：\n"
        f"  {_qixin()} account create --name 测试客户 --signature 企信 --balance 100 --price 0.035 --json{dd}\n"
        "再为它创建控制台用户（手机号 + 密码登录，短信验证码由模拟器“收到”并显示在本终端）：\n"
        f"  {_qixin()} user create --account 1 --name 管理员 --phone 13800138000 --role owner"
        f" --password Qixin-Pass-2026{dd}\n"
        f"员工登录控制台：{_qixin()} staff create --name 管理员 --role admin --phone 13900139000"
        f" --password Qixin-Pass-2026{dd}"
    )
    _print_ports(settings, data_dir)
    echo = _handset_echo() if settings.sim_handset_echo else None
    _serve(asgi_app(services, embedded(services, on_handset=echo)), host, port, settings.trusted_proxies)


def _handset_echo() -> Callable[[str, str], None]:
    """Print what a simulated handset received (number masked), at most 5 lines a second."""
    import time

    from qixin.domain.numbers import mask

    window = {"second": 0, "lines": 0}

    def echo(destination: str, text: str) -> None:
        second = int(time.monotonic())
        if second != window["second"]:
            window["second"], window["lines"] = second, 0
        window["lines"] += 1
        if window["lines"] <= 5:
            typer.echo(f"[模拟手机 {mask(destination[-11:])}] {text}")

    return echo


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="监听地址（默认 127.0.0.1 或 QIXIN_HOST）")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP 端口（默认 8000 或 QIXIN_PORT）")] = None,
    data_dir: DataDir = None,
    smpp_port: SmppPort = None,
    cmpp_port: CmppPort = None,
    reuse_port: Annotated[
        bool,
        typer.Option("--reuse-port", help="以 SO_REUSEPORT 监听：多个 qixin api 进程可共享同一端口，由内核分配连接"),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="启动 N 个接口进程共享同一端口（SO_REUSEPORT，各用不同的 ID 节点号）；本进程只看护它们，"
            "任一进程意外退出即全部停止",
        ),
    ] = 1,
) -> None:
    """只运行 HTTP 接口、控制台与客户直连端口（分布式部署；调度与推送由 qixin dispatcher 进程负责）。"""
    from qixin.api.app import asgi_app
    from qixin.app import api_only, build

    settings = load_settings(data_dir, host=host, port=port, smpp_server_port=smpp_port, cmpp_server_port=cmpp_port)
    host, port = settings.host, settings.port
    if workers > 1:
        _api_workers(workers, settings, data_dir)
        return
    services = build(settings)
    _print_ports(settings, data_dir)
    typer.echo(f"企信 qixin 接口进程：http://{host}:{port}/（调度请另行运行 qixin dispatcher）")
    _serve(asgi_app(services, api_only(services)), host, port, settings.trusted_proxies, reuse_port=reuse_port)


def _api_workers(n: int, settings: Settings, data_dir: Path | None) -> None:
    """``qixin api --workers N``: migrations once, then N child ``qixin api --reuse-port`` processes on one port,
    each with its own id node (``QIXIN_NODE_ID`` + i, or a random base + i), the customer ports in the first
    only. SIGTERM / SIGINT stop them all; a child that exits by itself stops the rest and its code becomes ours
    (the orchestrator restarts the whole unit)."""
    import os
    import random
    import signal
    import subprocess

    if settings.port == 0:
        typer.echo("--workers 需要固定端口（--port 不能为 0）", err=True)
        raise typer.Exit(code=2)
    from qixin.store.migrate import migrate as do_migrate

    do_migrate(settings.db_url)  # once, here: N children migrating a fresh database at once would race
    base = settings.node_id if settings.node_id is not None else random.randrange(1024)
    common = [sys.executable, "-m", "qixin.cli", "api", "--reuse-port", "--host", settings.host,
              "--port", str(settings.port)] + (["--data-dir", str(data_dir)] if data_dir else [])  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop_all(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for i in range(n):
        # one process owns the customer ports (as given to this command: flags or environment)
        smpp, cmpp = (settings.smpp_server_port, settings.cmpp_server_port) if i == 0 else (0, 0)
        ports = ["--smpp-port", str(smpp), "--cmpp-port", str(cmpp)]
        env = dict(os.environ, QIXIN_NODE_ID=str((base + i) % 1024))
        if i:  # the SGIP and SMGP ports (environment only) likewise stay with the first
            env.update(QIXIN_SGIP_SERVER_PORT="0", QIXIN_SMGP_SERVER_PORT="0")
        procs.append(subprocess.Popen([*common, *ports], env=env))
    typer.echo(f"企信 qixin 接口：{n} 个进程共享 http://{settings.host}:{settings.port}/"
               f"（ID 节点号 {base % 1024}–{(base + n - 1) % 1024}）")  # fmt: skip
    code = 0
    alive = {p.pid: p for p in procs}
    while alive:
        pid, status = os.wait()
        child = alive.pop(pid, None)
        if child is None:
            continue
        child.returncode = os.waitstatus_to_exitcode(status)
        if not stopping:
            typer.echo(f"接口进程 {pid} 意外退出（{child.returncode}），停止其余进程", err=True)
            code = child.returncode or 1
            stop_all()
    raise typer.Exit(code=code)


@app.command()
def dispatcher(
    data_dir: DataDir = None,
    simulators: Annotated[
        bool, typer.Option("--simulators", help="在本进程内启动内置运营商模拟器作为通道（演示与测试用）")
    ] = False,
    no_workers: Annotated[
        bool,
        typer.Option(
            "--no-workers", help="只运行通道、调度与上行；推送、计费、文件任务、告警与数据清理交给 qixin worker 进程"
        ),
    ] = False,
) -> None:
    """只运行调度、通道、上行、回执推送与计费任务（分布式部署；接口由 qixin api 进程提供）。
    多个调度进程可共用一个 PostgreSQL 队列，每条短信只提交一次。"""
    from qixin.app import dispatcher_only

    def runtime(services: Services) -> Any:
        return dispatcher_only(services, simulators, workers=not no_workers)

    def started(s: Services) -> str:
        return f"企信 qixin 调度进程已启动：{len(s.router.connectors)} 个通道"

    _run_role(data_dir, runtime, started, "调度进程已停止")


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """只运行后台任务：回执推送（webhook）、计费日常、空号检测与文件任务、告警、数据清理（分布式部署，
    与 qixin dispatcher --no-workers 搭配）。"""
    from qixin.app import workers_only

    _run_role(data_dir, workers_only, lambda s: "企信 qixin 后台任务进程已启动", "后台任务进程已停止")


def _run_role(
    data_dir: Path | None, make: Callable[[Services], Any], started: Callable[[Services], str], stopped: str
) -> None:
    """Run one process's roles until SIGTERM / SIGINT (``qixin dispatcher``, ``qixin worker``), with the
    Prometheus endpoint when ``QIXIN_METRICS_PORT`` is set."""
    import signal

    from qixin.app import build

    async def main() -> None:
        services = build(load_settings(data_dir))
        runtime = make(services)
        await runtime.start()
        if services.settings.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(services.settings.metrics_port, services.settings.host, services.metrics.registry)
            typer.echo(f"Prometheus 指标：http://{services.settings.host}:{services.settings.metrics_port}/metrics")
        typer.echo(started(services))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runtime.stop()
            typer.echo(stopped)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(main())


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
    permit_24h: Annotated[bool, typer.Option("--permit-24h", help="授予24小时发送许可（营销仍限9–20点）")] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """创建客户账户：签名（已审核）、开户充值、一对 API 密钥。"""
    from qixin.domain.money import yuan_to_li

    try:
        bal, pr = yuan_to_li(balance), yuan_to_li(price)
    except QxError as e:
        _fail(e)
        return
    out = _call(
        data_dir,
        lambda s: s.accounts.create(
            Actor.cli(), name, signature, bal, pr, callback_url, allow_free_text=not no_free_text, permit_24h=permit_24h
        ),
    )
    _out(
        out,
        as_json,
        f"账户 {out['account_id']} 已创建\nAppKey: {out['app_key']}\nAppSecret: {out['app_secret']}",
    )


@account_app.command("set")
def account_set(
    account_id: Annotated[int, typer.Argument(help="账户 ID")],
    tps: Annotated[int | None, typer.Option("--tps", help="每秒上限（计费条数/秒）；0 = 不限")] = None,
    daily_cap: Annotated[int | None, typer.Option("--daily-cap", help="每日上限（条/北京时间日）；0 不限")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """设置账户流量控制（每秒上限、每日上限）；不带选项时显示当前设置。"""
    if tps is None and daily_cap is None:
        out = _call(data_dir, lambda s: s.flow.get(Actor.cli(), account_id))
    else:
        out = _call(data_dir, lambda s: s.flow.set(Actor.cli(), account_id, tps, daily_cap))
    lim = lambda v: "不限" if not v else str(v)  # noqa: E731
    _out(out, as_json, f"账户 {account_id}：每秒上限 {lim(out['tps'])} 条，每日上限 {lim(out['daily_cap'])} 条")


@account_app.command("topup")
def account_topup(
    account_id: Annotated[int, typer.Argument(help="账户 ID")],
    amount: Annotated[str, typer.Option(help="充值金额（元）")],
    ref: Annotated[str | None, typer.Option(help="充值单号（同一单号只入账一次）")] = None,
    operator: Annotated[bool, typer.Option("--operator", help="运营充值：不受账户最低充值金额限制")] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """给账户充值（写入账本；每次充值把余额有效期延长）。"""
    import secrets

    from qixin.domain.money import li_to_yuan, yuan_to_li

    try:
        li = yuan_to_li(amount)
    except QxError as e:
        _fail(e)
        return
    reference = ref or f"cli-{secrets.token_hex(6)}"
    bal = _call(data_dir, lambda s: s.billing.topup(Actor.cli(), account_id, li, reference, "运营充值", operator))
    _out({"account_id": account_id, "balance_li": bal}, as_json, f"充值成功，当前余额 {li_to_yuan(bal)} 元")


@signature_app.command("add")
def signature_add(
    account: Annotated[int, typer.Option(help="账户 ID")],
    name: Annotated[str, typer.Option(help="签名名称（不含【】）")],
    purpose: Annotated[str, typer.Option(help="用途说明")] = "",
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """提交签名申请（待审核）。"""
    out = _call(data_dir, lambda s: s.signatures.apply(Actor.cli(), name, purpose, account_id=account))
    _out({"signature_id": out["id"], "status": out["status"]}, as_json, f"签名申请 {out['id']} 已提交，等待审核")


def _review(kind: str, item_id: int, approve: bool, reason: str | None, data_dir: Path | None) -> None:
    _call(data_dir, lambda s: getattr(s, kind).review(Actor.cli(), item_id, approve, reason))
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
    variables: dict[str, Any] = {}
    for item in var or []:
        k, _, v = item.partition("=")
        variables[k.strip()] = v.strip() or "text"
    out = _call(
        data_dir, lambda s: s.templates.apply(Actor.cli(), name, category, content, variables, account_id=account)
    )
    _out({"template_id": int(out["id"]), "status": out["status"]}, as_json, f"模板申请 {out['id']} 已提交，等待审核")


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
    _call(data_dir, lambda s: s.accounts.set_callback(Actor.cli(), app_key, url or None))
    typer.echo("推送地址已更新")


@key_app.command("callback-format")
def key_callback_format(
    app_key: str,
    fmt: Annotated[str, typer.Argument(help="qixin（默认）或 aliyun（SmsReport / SmsUp 格式）")],
    data_dir: DataDir = None,
) -> None:
    """设置密钥的状态报告与上行推送格式。"""
    _call(data_dir, lambda s: s.aliyun.set_callback_format(Actor.cli(), app_key, fmt))
    typer.echo(f"推送格式已设为 {fmt}")


@key_app.command("allow-ip")
def key_allow_ip(
    app_key: str,
    ips: Annotated[list[str] | None, typer.Argument(help="允许的 IP 或网段；不填表示不限")] = None,
    data_dir: DataDir = None,
) -> None:
    """设置密钥的 IP 白名单。"""
    _call(data_dir, lambda s: s.accounts.set_ip_allowlist(Actor.cli(), app_key, list(ips or [])))
    typer.echo("IP 白名单已更新")


@key_app.command("create")
def key_create(
    account: Annotated[int, typer.Option(help="账户 ID")], data_dir: DataDir = None, as_json: AsJson = False
) -> None:
    """为账户新建一对 API 密钥（AppSecret 只显示一次）。"""
    out = _call(data_dir, lambda s: s.accounts.create_key(Actor.cli(), account))
    _out(out, as_json, f"AppKey: {out['app_key']}\nAppSecret: {out['app_secret']}")


@key_app.command("rotate")
def key_rotate(app_key: str, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """更换密钥的 AppSecret（旧的立即失效；新的只显示一次）。"""
    out = _call(data_dir, lambda s: s.accounts.rotate_key(Actor.cli(), app_key))
    _out(out, as_json, f"AppKey: {out['app_key']}\n新 AppSecret: {out['app_secret']}")


@key_app.command("disable")
def key_disable(app_key: str, data_dir: DataDir = None) -> None:
    """停用密钥（用它签名的请求立即被拒绝）。"""
    _call(data_dir, lambda s: s.accounts.set_key_status(Actor.cli(), app_key, False))
    typer.echo("密钥已停用")


@key_app.command("enable")
def key_enable(app_key: str, data_dir: DataDir = None) -> None:
    """重新启用密钥。"""
    _call(data_dir, lambda s: s.accounts.set_key_status(Actor.cli(), app_key, True))
    typer.echo("密钥已启用")


@staff_app.command("create")
def staff_create(
    name: Annotated[str, typer.Option(help="员工名称")],
    role: Annotated[str, typer.Option(help="admin / reviewer / finance / ops")],
    phone: Annotated[str | None, typer.Option(help="手机号：可登录控制台（需同时给出 --password）")] = None,
    password: Annotated[str | None, typer.Option(help="控制台初始密码（首次登录须修改）")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """创建员工并发放管理接口令牌（只显示一次）；给出 --phone 与 --password 时也可登录控制台。"""
    if (phone is None) != (password is None):
        _fail(QxError("INVALID_REQUEST", "--phone 与 --password 须同时给出"))
    if phone is not None and password is not None:
        out = _call(data_dir, lambda s: s.console_users.create_staff(Actor.cli(), name, role, phone, password))
    else:
        out = _call(data_dir, lambda s: s.staff_users.create(Actor.cli(), name, role))
    text = f"员工 {out['name']}（{out['role']}）已创建\n令牌（只显示一次）：{out['token']}"
    if "phone" in out:
        text += f"\n控制台登录手机号：{out['phone']}（首次登录须修改密码）"
    _out(out, as_json, text)


@staff_app.command("totp")
def staff_totp(
    staff_id: Annotated[int, typer.Argument(help="员工 ID")],
    off: Annotated[bool, typer.Option("--off", help="取消动态口令")] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """为员工的控制台登录启用（或取消）TOTP 动态口令；启用时密钥只显示一次。"""
    out = _call(data_dir, lambda s: s.console_users.set_totp(Actor.cli(), staff_id, not off))
    if off:
        _out(out, as_json, f"员工 {staff_id} 的动态口令已取消")
    else:
        _out(out, as_json, f"员工 {staff_id} 的动态口令已启用（只显示一次）：\n密钥：{out['totp_secret']}\n"
                           f"身份验证器链接：{out['uri']}")  # fmt: skip


@user_app.command("create")
def user_create(
    account: Annotated[int, typer.Option("--account", help="账户 ID")],
    name: Annotated[str, typer.Option(help="用户名称")],
    phone: Annotated[str, typer.Option(help="手机号（登录名，接收登录验证码）")],
    role: Annotated[str, typer.Option(help="owner / operator / finance / viewer")],
    password: Annotated[str, typer.Option(help="初始密码（首次登录须修改）")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """创建客户控制台用户。"""
    out = _call(data_dir, lambda s: s.console_users.create_user(Actor.cli(), account, name, phone, role, password))
    _out(out, as_json, f"控制台用户 {out['name']}（{out['role']}，账户 {out['account_id']}）已创建："
                       f"手机号 {out['phone']}，首次登录须修改密码")  # fmt: skip


@user_app.command("list")
def user_list(account: Annotated[int, typer.Option("--account", help="账户 ID")], data_dir: DataDir = None) -> None:
    """列出账户的控制台用户。"""
    typer.echo(json.dumps(_call(data_dir, lambda s: s.console_users.listing(Actor.cli(), account)), ensure_ascii=False))


@user_app.command("unlock")
def user_unlock(user_id: Annotated[int, typer.Argument(help="控制台用户 ID")], data_dir: DataDir = None) -> None:
    """解除因登录失败过多造成的锁定。"""
    _call(data_dir, lambda s: s.console_users.unlock(Actor.cli(), user_id))
    typer.echo(f"用户 {user_id} 已解锁")


@staff_app.command("revoke")
def staff_revoke(staff_id: Annotated[int, typer.Argument(help="员工 ID")], data_dir: DataDir = None) -> None:
    """吊销员工令牌（立即失效）。"""
    _call(data_dir, lambda s: s.staff_users.revoke(Actor.cli(), staff_id))
    typer.echo(f"员工 {staff_id} 的令牌已吊销")


@staff_app.command("list")
def staff_list(data_dir: DataDir = None) -> None:
    """员工列表。"""
    typer.echo(json.dumps(_call(data_dir, lambda s: s.staff_users.listing(Actor.cli())), ensure_ascii=False))


def _channel_options(values: dict[str, Any], option: list[str] | None) -> dict[str, Any]:
    if option:
        opts: dict[str, Any] = {}
        for item in option:
            k, _, v = item.partition("=")
            opts[k.strip()] = int(v) if v.strip().isdigit() else v.strip()
        values["options"] = opts
    return {k: v for k, v in values.items() if v is not None}


@channels_app.callback()
def channels_list(
    ctx: typer.Context,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """通道列表（不带子命令时）。运行中平台的实时健康状态见 GET /admin/channels。"""
    if ctx.invoked_subcommand is not None:
        return
    from qixin.gateway.manager import load_health
    from qixin.services.channels import list_channels
    from qixin.store.db import Tx

    def job(tx: Tx) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        return [c.public() for c in list_channels(tx)], load_health(tx)

    rows, live = _write(data_dir, job)
    for c in rows:
        c["live"] = live.get(c["name"])
    if as_json:
        typer.echo(json.dumps({"channels": rows}, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="通道（运行状态来自正在运行的平台，15 秒内更新）")
    for col in ("ID", "名称", "协议", "地址", "运营商", "状态", "窗口", "TPS", "提交/错误", "回执"):
        table.add_column(col)
    for c in rows:
        h = c["live"] or {}
        state = f"{h.get('bound', 0)}/{c['connections']} 已连接" if h else "未运行"
        state = state if c["enabled"] else "停用"
        table.add_row(
            str(c["id"]), c["name"], c["protocol"], f"{c['host']}:{c['port']}", ",".join(c["carriers"]) or "全部",
            state, f"{h.get('window_used', '-')}/{c['window']}", f"{h.get('tps_now', '-')}/{c['tps'] or '不限'}",
            f"{h.get('submitted', '-')}/{h.get('submit_errors', '-')}", str(h.get("receipts", "-")),
        )  # fmt: skip
    Console().print(table)


@channels_app.command("add")
def channels_add(
    name: Annotated[str, typer.Option(help="通道名称")],
    protocol: Annotated[str, typer.Option(help="smpp / cmpp2 / cmpp3 / sgip / smgp")],
    host: Annotated[str, typer.Option(help="网关地址")],
    port: Annotated[int, typer.Option(help="网关端口")],
    username: Annotated[str, typer.Option(help="登录账号（system_id / SP 企业代码 / 登录名 / ClientID）")],
    secret: Annotated[str, typer.Option(help="登录密码（共享密钥）")],
    service_code: Annotated[str, typer.Option(help="特服号 / src_id（扩展码接在其后）")] = "",
    carriers: Annotated[str, typer.Option(help="承载运营商，逗号分隔：cmcc,cucc,ctcc,cbn,intl；空为全部")] = "",
    msg_types: Annotated[str, typer.Option(help="承载类型，逗号分隔；空为全部")] = "",
    tps: Annotated[int, typer.Option(help="TPS 上限，0 为不限")] = 0,
    window: Annotated[int, typer.Option(help="滑动窗口")] = 16,
    connections: Annotated[int, typer.Option(help="连接数")] = 1,
    priority: Annotated[int, typer.Option(help="优先级（小的优先）")] = 100,
    weight: Annotated[int, typer.Option(help="同优先级内的权重")] = 1,
    accounts: Annotated[str, typer.Option(help="专属账户 ID，逗号分隔；空为共享")] = "",
    option: Annotated[list[str] | None, typer.Option(help="协议参数 key=value，如 node_id=3020012345")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """新建通道。"""

    values = _channel_options(
        {
            "name": name, "protocol": protocol, "host": host, "port": port, "username": username, "secret": secret,
            "service_code": service_code, "carriers": carriers, "msg_types": msg_types, "tps": tps, "window": window,
            "connections": connections, "priority": priority, "weight": weight, "accounts": accounts,
        },
        option,
    )  # fmt: skip
    ch = _call(data_dir, lambda s: s.channel_desk.create(Actor.cli(), values))
    _out(ch, as_json, f"通道 {ch['name']}（ID {ch['id']}）已创建")


@channels_app.command("set")
def channels_set(
    channel: Annotated[str, typer.Argument(help="通道名称或 ID")],
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    username: Annotated[str | None, typer.Option()] = None,
    secret: Annotated[str | None, typer.Option()] = None,
    service_code: Annotated[str | None, typer.Option()] = None,
    carriers: Annotated[str | None, typer.Option()] = None,
    msg_types: Annotated[str | None, typer.Option()] = None,
    tps: Annotated[int | None, typer.Option()] = None,
    window: Annotated[int | None, typer.Option()] = None,
    connections: Annotated[int | None, typer.Option()] = None,
    priority: Annotated[int | None, typer.Option()] = None,
    weight: Annotated[int | None, typer.Option()] = None,
    accounts: Annotated[str | None, typer.Option()] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled", help="启用 / 停用")] = None,
    option: Annotated[list[str] | None, typer.Option(help="协议参数 key=value（整体替换）")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """修改通道（运行中的平台数秒内按新配置重建连接）。"""

    values = _channel_options(
        {
            "host": host, "port": port, "username": username, "secret": secret, "service_code": service_code,
            "carriers": carriers, "msg_types": msg_types, "tps": tps, "window": window, "connections": connections,
            "priority": priority, "weight": weight, "accounts": accounts, "enabled": enabled,
        },
        option,
    )  # fmt: skip

    ch = _call(data_dir, lambda s: s.channel_desk.update(Actor.cli(), channel, values))
    _out(ch, as_json, f"通道 {ch['name']} 已更新（版本 {ch['version']}）")


@billing_app.command("verify")
def billing_verify(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """核对账本：每个账户的余额等于其账目合计，每个条数包的剩余条数等于其套餐账目合计。"""
    out = _call(data_dir, lambda s: s.billing.verify(Actor.cli()))
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        typer.echo(
            f"核对 {out['accounts']} 个账户、{out['packages']} 个条数包：" + ("全部一致" if out["ok"] else "发现不一致")
        )
        for r in out["mismatches"]:
            typer.echo(f"  账户 {r['account_id']}：余额 {r['balance_li']} 厘，账本合计 {r['ledger_li']} 厘")
        for r in out["package_mismatches"]:
            typer.echo(
                f"  条数包 {r['package_id']}（账户 {r['account_id']}）：剩余 {r['remaining_parts']} 条，"
                f"账目合计 {r['entries_parts']} 条"
            )
        for a in out["negative"]:
            typer.echo(f"  账户 {a}：余额为负")
    if not out["ok"]:
        raise typer.Exit(code=1)


def _li(text: str | None) -> int | None:
    from qixin.domain.money import yuan_to_li

    if text is None:
        return None
    try:
        return yuan_to_li(text)
    except QxError as e:
        _fail(e)
        raise


def _audited(data_dir: Path | None, action: str, target: str, fn: Any) -> Any:
    """A change made by the operator at the command line, with its audit row in the same transaction."""
    from qixin.services.actor import audit

    def job(tx: Any) -> Any:
        out = fn(tx)
        audit(tx, Actor.cli(), action, target, out if isinstance(out, dict) else {"result": out})
        return out

    return _write(data_dir, job)


def _when(text: str | None) -> int | None:
    from qixin.domain.timeparse import parse_time

    try:
        return parse_time(text)
    except QxError as e:
        _fail(e)
        raise


@billing_app.command("settings")
def billing_settings(
    account_id: Annotated[int, typer.Argument(help="账户 ID")],
    min_first_topup: Annotated[str | None, typer.Option(help="首次充值最低金额（元），0 = 不限")] = None,
    min_topup: Annotated[str | None, typer.Option(help="后续充值最低金额（元），0 = 不限")] = None,
    validity_months: Annotated[int | None, typer.Option(help="每次充值延长余额有效期（月），0 = 永久")] = None,
    low_balance: Annotated[str | None, typer.Option(help="余额提醒阈值（元），0 = 关闭")] = None,
    alert_email: Annotated[str | None, typer.Option(help="提醒邮箱")] = None,
    alert_webhook: Annotated[str | None, typer.Option(help="提醒 Webhook 地址")] = None,
    alert_mobile: Annotated[str | None, typer.Option(help="提醒手机号")] = None,
    billing_email: Annotated[str | None, typer.Option(help="对账单邮箱")] = None,
    data_dir: DataDir = None,
) -> None:
    """查看或修改账户的计费设置（不带选项只显示）。"""
    changes: dict[str, Any] = {
        "min_first_topup_li": _li(min_first_topup),
        "min_topup_li": _li(min_topup),
        "validity_months": validity_months,
        "low_balance_li": _li(low_balance),
        "alert_email": alert_email,
        "alert_webhook": alert_webhook,
        "alert_mobile": alert_mobile,
        "billing_email": billing_email,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    out = _call(data_dir, lambda s: s.billing.update_settings(Actor.cli(), account_id, changes))
    typer.echo(json.dumps(out, ensure_ascii=False))


@billing_app.command("price")
def billing_price(
    account_id: Annotated[int, typer.Argument(help="账户 ID")],
    price: Annotated[str, typer.Option(help="单价（元），如 0.038")],
    product: Annotated[str, typer.Option(help="sms（每计费条）或 numcheck（每次查询）")] = "sms",
    carrier: Annotated[str, typer.Option(help="cmcc / cucc / ctcc / cbn；不填 = 全部")] = "",
    msg_type: Annotated[str, typer.Option("--type", help="verification / notification / marketing；不填 = 全部")] = "",
    effective_at: Annotated[str | None, typer.Option(help="生效时间 ISO 8601（北京时间）；不填 = 现在")] = None,
    note: Annotated[str | None, typer.Option(help="说明（写入调价通知）")] = None,
    data_dir: DataDir = None,
) -> None:
    """新增价格计划（在生效时间起适用），并通知客户。"""
    li, at = _li(price), _when(effective_at)
    assert li is not None
    out = _call(data_dir, lambda s: s.billing.add_price_plan(Actor.cli(), account_id, product, li, carrier, msg_type,
                                                              at, note))  # fmt: skip
    typer.echo(json.dumps(out, ensure_ascii=False))


@billing_app.command("prices")
def billing_prices(account_id: Annotated[int, typer.Argument(help="账户 ID")], data_dir: DataDir = None) -> None:
    """列出账户的价格计划。"""
    typer.echo(json.dumps(_call(data_dir, lambda s: s.billing.plans(Actor.cli(), account_id)), ensure_ascii=False))


@billing_app.command("package")
def billing_package(
    account_id: Annotated[int, typer.Argument(help="账户 ID")],
    kind: Annotated[str, typer.Option(help="year（自然年，1 月 1 日 0 点清零）或 term（期限）")],
    parts: Annotated[int, typer.Option(help="条数")],
    ref: Annotated[str, typer.Option(help="套餐单号（同一单号只开通一次）")],
    year: Annotated[int | None, typer.Option(help="year：适用的年份（默认今年）")] = None,
    months: Annotated[int | None, typer.Option(help="term：有效月数（默认 12）")] = None,
    starts_at: Annotated[str | None, typer.Option(help="term：开始时间（默认现在）")] = None,
    expires_at: Annotated[str | None, typer.Option(help="term：到期时间（代替 --months）")] = None,
    price: Annotated[str, typer.Option(help="套餐价格（元）")] = "0",
    pay_from_balance: Annotated[bool, typer.Option("--pay-from-balance", help="从账户余额扣除套餐价格")] = False,
    name: Annotated[str, typer.Option(help="名称")] = "",
    data_dir: DataDir = None,
) -> None:
    """开通条数包。"""
    li, start, end = _li(price) or 0, _when(starts_at), _when(expires_at)
    out = _call(
        data_dir,
        lambda s: s.billing.grant_package(Actor.cli(), account_id, kind, parts, ref, year=year, starts_at=start,
                                          expires_at=end, months=months, price_li=li,
                                          pay_from_balance=pay_from_balance, name=name),
    )  # fmt: skip
    typer.echo(json.dumps(out, ensure_ascii=False))


@billing_app.command("packages")
def billing_packages(account_id: Annotated[int, typer.Argument(help="账户 ID")], data_dir: DataDir = None) -> None:
    """列出账户的条数包。"""
    typer.echo(json.dumps(_call(data_dir, lambda s: s.billing.packages(Actor.cli(), account_id)), ensure_ascii=False))


@billing_app.command("refund-rule")
def billing_refund_rule(
    kind: Annotated[str, typer.Argument(help="stat（状态报告 stat，如 UNDELIV）或 err（错误码）")],
    code: Annotated[str, typer.Argument(help="代码")],
    account: Annotated[int, typer.Option(help="账户 ID；0 = 全部账户")] = 0,
    remove: Annotated[bool, typer.Option("--remove", help="删除这条规则")] = False,
    data_dir: DataDir = None,
) -> None:
    """新增（或 --remove 删除）退款规则：哪些状态报告退款。平台原因失败总是退款。"""
    if remove:
        out = _call(data_dir, lambda s: s.billing.remove_refund_rule_by_code(Actor.cli(), kind, code, account))
    else:
        out = _call(data_dir, lambda s: s.billing.add_refund_rule(Actor.cli(), kind, code, account))
    typer.echo(json.dumps(out, ensure_ascii=False))


@billing_app.command("refund-rules")
def billing_refund_rules(data_dir: DataDir = None) -> None:
    """列出退款规则。"""
    typer.echo(json.dumps(_call(data_dir, lambda s: s.billing.refund_rules(Actor.cli()))))


@billing_app.command("statement")
def billing_statement(
    period: Annotated[str, typer.Option(help="账期 YYYY-MM（北京时间自然月）")],
    account: Annotated[int | None, typer.Option(help="账户 ID；不填 = 全部账户")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="把 CSV 与 XLSX 写到这个目录")] = None,
    email: Annotated[bool, typer.Option("--email", help="发送到账户的对账邮箱（QIXIN_SMTP_*）")] = False,
    data_dir: DataDir = None,
) -> None:
    """出对账单（已出的不重复出），可写出文件、发送邮件。"""
    from qixin.services import statements

    async def run(s: Services) -> list[str]:
        cli = Actor.cli()
        done = await s.billing.issue_statements(cli, period, account)
        lines = []
        for sid in done["statement_ids"]:
            st = await s.billing.statement(cli, sid)
            line = f"账户 {st['account_id']} {st['period']}：期初 {st['opening_li']} 厘，期末 {st['closing_li']} 厘"
            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
                base = out_dir / f"statement-{st['account_id']}-{st['period']}"
                base.with_suffix(".csv").write_bytes(statements.to_csv(st))
                base.with_suffix(".xlsx").write_bytes(statements.to_xlsx(st))
                line += f"，已写出 {base}.csv / .xlsx"
            if email:
                ok = (await s.billing.email_statement(cli, sid))["emailed"]
                line += "，邮件已发送" if ok else "，邮件发送失败"
            lines.append(line)
        return lines

    for line in _call(data_dir, run):
        typer.echo(line)


@billing_app.command("sweep")
def billing_sweep(data_dir: DataDir = None) -> None:
    """立即执行到期处理：条数包到期清零、余额过期、对账单异议期届满确认。"""
    from qixin.services import statements
    from qixin.services.billing import expire_due
    from qixin.store.db import now_ms

    def job(tx: Any) -> dict[str, Any]:
        now = now_ms()
        return {"expired": expire_due(tx, now), "statements_confirmed": statements.close_windows(tx, now)}

    typer.echo(json.dumps(_audited(data_dir, "billing.sweep", "billing", job), ensure_ascii=False))


@stats_app.command("verify")
def stats_verify(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """核对统计：每个账户每种状态的汇总条数、计费条数、金额等于短信记录的合计。"""
    from qixin.services.stats import verify

    out = _write(data_dir, verify)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        typer.echo(f"核对 {out['groups']} 组：" + ("全部一致" if out["ok"] else "发现不一致"))
        for m in out["mismatches"]:
            typer.echo(f"  账户 {m['account_id']} {m['status']}：汇总 {m['rollup']}，记录 {m['messages']}")
    if not out["ok"]:
        raise typer.Exit(code=1)


@stats_app.command("rebuild")
def stats_rebuild(data_dir: DataDir = None) -> None:
    """从短信记录重建统计汇总（含失败原因分组）。"""
    from qixin.services.stats import rebuild

    n = _audited(data_dir, "stats.rebuild", "stats_hourly", lambda tx: {"messages": rebuild(tx)})
    typer.echo(f"已按 {n['messages']} 条短信重建统计")


@retention_app.command("purge")
def retention_purge(
    before: Annotated[str | None, typer.Option("--before", help="清理此时间之前的明细（日期为北京时间 0 点）")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只统计将清理的条数，不删除")] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """清理超过保留期（QIXIN_RETENTION_DAYS，默认 183 天）的短信明细。

    汇总统计、账本、审计保留；未结投诉涉及的短信保留。"""
    from qixin.services.actor import Actor

    async def purge(s: Services) -> dict[str, Any]:
        done = await s.retention.purge(Actor.cli(), before, dry_run)
        await s.retention.files_freed()  # the dropped months' files, before the process ends
        return done

    out = _call(data_dir, purge)
    p = out["purged"]
    human = (
        f"{'将清理' if dry_run else '已清理'} {out['before_local']} 之前：短信 {p['messages']} 条，"
        f"提交记录 {p['submits']}，批次 {p['batches']}，上行 {p['mo_messages']}，推送 {p['webhook_outbox']}，"
        f"暂存回执 {p['receipt_inbox']}，文件任务 {p.get('file_jobs', 0)}；"
        f"投诉证据保留 {out['kept']['complaint_evidence']} 条，"
        f"未终态保留 {out['kept']['not_final']} 条；最长事务 {out['longest_chunk_ms']} ms"
    )
    _out(out, as_json, human)


@retention_app.command("close-complaint")
def retention_close_complaint(
    complaint_id: Annotated[int, typer.Argument(help="投诉 ID")],
    note: Annotated[str, typer.Option(help="结案说明")] = "",
    data_dir: DataDir = None,
) -> None:
    """投诉结案：其证据短信此后可按保留期清理。"""
    from qixin.services.actor import Actor

    _call(data_dir, lambda s: s.retention.close_complaint(Actor.cli(), complaint_id, note))
    typer.echo(f"投诉 {complaint_id} 已结案")


@classifier_app.command("retrain")
def classifier_retrain(
    epochs: Annotated[int | None, typer.Option("--epochs", help="训练轮数（默认训练参数）")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """用内置语料加上全部人工审核结论重新训练内容分类器，新版本在各进程数秒内生效。"""
    from dataclasses import replace

    from qixin.domain.compliance.classifier import TrainParams

    params = TrainParams() if epochs is None else replace(TrainParams(), epochs=epochs)
    out = _call(data_dir, lambda s: s.reviews.retrain(Actor.cli(), params))
    new = "新版本" if out["new"] else "版本未变（训练数据与参数相同）"
    human = f"分类器 {out['previous_version']} → {out['version']}（{new}，人工审核结论 {out['decisions']} 条）"
    _out(out, as_json, human)


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


# -- direct connections (customer SMPP / CMPP ports) ---------------------------------------------------------


def _port_of(protocol: str) -> int | None:
    st = load_settings()
    return st.customer_port(protocol) or None


@connection_app.command("add")
def connection_add(
    account: Annotated[int, typer.Option(help="账户 ID")],
    protocol: Annotated[str, typer.Option(help="smpp / cmpp / sgip / smgp")],
    login: Annotated[str, typer.Option(help="登录名（SMPP system_id，CMPP SP ID，SGIP Login Name，SMGP ClientID）")],
    secret: Annotated[str, typer.Option(help="密码（只写：之后不再显示）")],
    ip: Annotated[list[str] | None, typer.Option("--ip", help="允许的来源 IP 或网段，可重复；不填表示不限")] = None,
    max_connections: Annotated[int, typer.Option(help="最大并发连接数")] = 4,
    tps: Annotated[int, typer.Option(help="每秒提交上限；0 表示不单独限制")] = 0,
    daily_cap: Annotated[int, typer.Option(help="每日（北京时间）发送条数上限；0 表示不限")] = 0,
    service_code: Annotated[str, typer.Option(help="服务代码（源号码前缀，后接账户扩展码）")] = "",
    signature: Annotated[str, typer.Option(help="使用的签名；不填则取内容中的【签名】")] = "",
    msg_type: Annotated[str, typer.Option("--type", help="verification / notification / marketing")] = "notification",
    deliver_to: Annotated[
        str, typer.Option(help="SGIP：客户自己的 SGIP 监听地址 主机:端口（回执与上行送往此处）")
    ] = "",
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """为账户新建直连登录账号（客户用自己的 SMPP / CMPP / SGIP / SMGP 客户端连接平台端口）。"""
    out = _call(
        data_dir,
        lambda s: s.connections.add(
            Actor.cli(), account, protocol, login, secret, ip_allowlist=list(ip or []),
            max_connections=max_connections, tps=tps, daily_cap=daily_cap, service_code=service_code,
            signature=signature, msg_type=msg_type, deliver_to=deliver_to, port=_port_of(protocol),
        ),
    )  # fmt: skip
    _out(
        out,
        as_json,
        f"直连账号 {out['id']} 已创建：{out['protocol']} 登录名 {out['login']}，端口 {out['port'] or '未开启'}",
    )


@connection_app.command("list")
def connection_list(
    account: Annotated[int | None, typer.Option(help="只列出此账户的")] = None,
    data_dir: DataDir = None,
) -> None:
    """直连账号列表（不含密码）。"""
    rows = _call(data_dir, lambda s: s.connections.listing(Actor.cli(), account))
    typer.echo(json.dumps({"connections": rows}, ensure_ascii=False))


@connection_app.command("set")
def connection_set(
    connection_id: Annotated[int, typer.Argument(help="直连账号 ID")],
    secret: Annotated[str | None, typer.Option(help="新密码")] = None,
    ip: Annotated[list[str] | None, typer.Option("--ip", help="允许的来源 IP 或网段（替换原有的）")] = None,
    any_ip: Annotated[bool, typer.Option("--any-ip", help="不限来源 IP")] = False,
    max_connections: Annotated[int | None, typer.Option(help="最大并发连接数")] = None,
    tps: Annotated[int | None, typer.Option(help="每秒提交上限；0 表示不单独限制")] = None,
    daily_cap: Annotated[int | None, typer.Option(help="每日发送条数上限；0 表示不限")] = None,
    service_code: Annotated[str | None, typer.Option(help="服务代码")] = None,
    signature: Annotated[str | None, typer.Option(help="签名")] = None,
    msg_type: Annotated[str | None, typer.Option("--type", help="短信类型")] = None,
    status: Annotated[str | None, typer.Option(help="active / disabled")] = None,
    deliver_to: Annotated[str | None, typer.Option(help="SGIP 回送地址 主机:端口")] = None,
    data_dir: DataDir = None,
) -> None:
    """修改直连账号（运行中的端口数秒内生效；已建立的连接不断开）。"""
    ips: list[str] | None = [] if any_ip else (list(ip) if ip else None)
    out = _call(
        data_dir,
        lambda s: s.connections.set(
            Actor.cli(), connection_id, secret=secret, ip_allowlist=ips, max_connections=max_connections, tps=tps,
            daily_cap=daily_cap, service_code=service_code, signature=signature, msg_type=msg_type, status=status,
            deliver_to=deliver_to,
        ),
    )  # fmt: skip
    typer.echo(json.dumps(out, ensure_ascii=False))


@connection_app.command("remove")
def connection_remove(
    connection_id: Annotated[int, typer.Argument(help="直连账号 ID")], data_dir: DataDir = None
) -> None:
    """删除直连账号。"""
    _call(data_dir, lambda s: s.connections.remove(Actor.cli(), connection_id))
    typer.echo(f"直连账号 {connection_id} 已删除")


@app.command()
def send(
    account: Annotated[int, typer.Option(help="账户 ID")],
    file: Annotated[Path, typer.Option("--file", help="号码文件：CSV、XLSX 或 TXT（最多 1,000,000 个号码）")],
    content: Annotated[str | None, typer.Option(help="短信内容（不含签名）")] = None,
    template: Annotated[str | None, typer.Option("--template", help="模板 ID（模板发送）")] = None,
    params_column: Annotated[
        list[str] | None, typer.Option("--params-column", help="个性化：模板变量=列名（可重复）")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="所有号码相同的模板变量：变量=值（可重复）")
    ] = None,
    number_column: Annotated[str | None, typer.Option(help="号码所在列（列名或从 1 起的序号）")] = None,
    signature: Annotated[str | None, typer.Option(help="签名（账户只有一个已审核签名时可省略）")] = None,
    type: Annotated[str, typer.Option("--type", help="verification / notification / marketing")] = "notification",
    send_at: Annotated[str | None, typer.Option(help="定时发送：Unix 秒或 ISO 8601（北京时间）")] = None,
    audience: Annotated[str | None, typer.Option(help="发送对象说明（营销短信必填）")] = None,
    preview_only: Annotated[bool, typer.Option("--preview", help="只预览，不发送")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="不预览、不确认，直接发送")] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """按文件发送：预览（有效、无效、重复、退订、黑名单、条数、费用、发送时段），确认后分片受理并显示进度。"""
    import contextlib

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qixin.app import api_only
    from qixin.services.filejobs import FINAL, JobOptions

    def pairs(items: list[str] | None, what: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in items or []:
            k, sep, v = item.partition("=")
            if not sep or not k.strip():
                _fail(QxError("INVALID_REQUEST", f"{what} 应写作 变量=值：{item}"))
            out[k.strip()] = v.strip()
        return out

    at: int | str | None = int(send_at) if send_at and send_at.strip().isdigit() else send_at
    options = JobOptions(
        signature=signature, type=type, content=content, template_id=template, params=pairs(param, "--param"),
        params_columns=pairs(params_column, "--params-column"), number_column=number_column, send_at=at,
        audience=audience,
    )  # fmt: skip
    err = Console(stderr=True)

    async def main(s: Services) -> dict[str, Any]:
        runtime = api_only(s)  # migrations, the writer, the lexicon; this process runs the job itself
        await runtime.start()
        try:
            if file.stat().st_size > s.settings.filejob_max_bytes:
                raise QxError("FILE_TOO_LARGE", limit_bytes=s.settings.filejob_max_bytes)
            data = await asyncio.to_thread(file.read_bytes)
            if not yes:
                pv = await s.filejobs.preview(Actor.cli(), account, data, file.name, options)
                if as_json and preview_only:
                    return pv
                err.print(_preview_text(pv))
                if preview_only:
                    return pv
                if not typer.confirm("确认发送？", err=True):
                    raise typer.Exit(code=1)
            job = await s.filejobs.create(Actor.cli(), account, data, file.name, options)
            jid = int(job["job_id"])
            changed = asyncio.Event()
            runner = asyncio.create_task(s.filejobs.run(jid, on_chunk=changed.set))
            try:
                columns = (TextColumn("发送中"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
                with Progress(*columns, console=err, transient=as_json) as bar:
                    task = bar.add_task("job", total=job["total"])
                    while True:
                        job = await s.filejobs.progress(Actor.cli(), jid)
                        bar.update(task, completed=job["processed"])
                        if job["status"] in FINAL:
                            break
                        changed.clear()
                        with contextlib.suppress(TimeoutError):  # another runner may hold it: look again
                            await asyncio.wait_for(changed.wait(), 0.5)
                await runner
            finally:  # interrupted (Ctrl-C): stop sending; the platform's runner resumes the job later
                if not runner.done():
                    runner.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await runner
            return job
        finally:
            await runtime.stop()

    out = _call(data_dir, main)
    if preview_only:
        if as_json:
            typer.echo(json.dumps(out, ensure_ascii=False))
        return
    refused = "，".join(f"{k} {v}" for k, v in sorted(out["refused"].items())) or "无"
    _out(out, as_json, f"任务 {out['job_id']}：{out['status']}，受理 {out['accepted']}，未发送 {out['rejected']}"
                       f"（{refused}），费用 {out['fee']} 元")  # fmt: skip
    if out["status"] != "done":
        if out.get("error"):
            typer.echo(json.dumps(out["error"], ensure_ascii=False), err=True)
        raise typer.Exit(code=2)


def _preview_text(pv: dict[str, Any]) -> str:
    lines = [
        f"文件 {pv['filename']}：共 {pv['total']} 个号码，可发送 {pv['valid']}",
        f"  无效 {pv['invalid']}，重复 {pv['duplicate']}，已退订 {pv['opted_out']}，黑名单 {pv['blacklisted']}"
        + "".join(f"，{k} {v}" for k, v in pv["refused"].items()
                  if k not in ("NUMBER_INVALID", "NUMBER_DUPLICATE", "OPTED_OUT", "BLACKLISTED")),
        f"  每条 {pv['parts']} 条计费，共 {pv['total_parts']} 条，预计费用 {pv['total_fee']} 元（未扣条数包）"
        + ("" if pv["balance_enough"] else f"；当前余额 {pv['balance_li'] / 1000:.3f} 元不足，余额用完后任务将停止"),
    ]  # fmt: skip
    if pv.get("deferred_to_local"):
        lines.append(f"  发送时段外：将推迟到 {pv['deferred_to_local']}（北京时间）发送")
    elif pv.get("send_at_local"):
        lines.append(f"  定时发送：{pv['send_at_local']}（北京时间）")
    for k, v in pv["examples"].items():
        if v:
            lines.append(f"  示例 {k}：{'、'.join(v)}")
    if pv.get("content"):
        lines.append(f"  内容：{pv['content']}")
    return "\n".join(lines)


def main() -> None:
    try:
        app()
    except QxError as e:  # pragma: no cover - safety net
        typer.echo(json.dumps(e.to_dict(), ensure_ascii=False), err=True)
        sys.exit(2)


# -- alerts (services/alerts.py, docs/alerts.md) -------------------------------------------------------------


@alerts_app.command("list")
def alerts_list(
    state: Annotated[str, typer.Option(help="open / resolved / unacknowledged；不填 = 全部")] = "",
    kind: Annotated[str, typer.Option(help="告警类型，如 channel_down")] = "",
    limit: int = 50,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """告警历史（最新在前）：触发、恢复、确认。"""
    out = _call(data_dir, lambda s: s.alerts.history(Actor.cli(), state or None, kind or None, None, limit))
    lines = [
        f"#{a['id']} {a['state']:8} {a['kind']:20} {a['subject']:24} {a['message']}"
        + (f"（已确认：{a['acknowledged_by']}）" if a["acknowledged_at"] else "")
        for a in out["alerts"]
    ]
    _out(out, as_json, "\n".join(lines) or "没有告警")


@alerts_app.command("ack")
def alerts_ack(alert_id: int, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """确认一条告警（记入审计日志）。"""
    out = _call(data_dir, lambda s: s.alerts.acknowledge(Actor.cli(), alert_id))
    _out(out, as_json, f"告警 #{alert_id} 已确认")


@alerts_app.command("rules")
def alerts_rules(
    rule_id: Annotated[int | None, typer.Argument(help="要修改的规则 ID；不填 = 列出全部")] = None,
    threshold: Annotated[int | None, typer.Option(help="阈值：成功率 %、秒、条数或厘")] = None,
    for_seconds: Annotated[int | None, typer.Option("--for", help="条件持续多少秒后告警")] = None,
    window: Annotated[int | None, typer.Option(help="统计窗口（秒）")] = None,
    min_messages: Annotated[int | None, typer.Option(help="成功率的最小样本")] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled", help="启用或停用")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """列出告警规则，或修改一条（只改给出的选项）。"""
    if rule_id is None:
        rules = _call(data_dir, lambda s: s.alerts.rules(Actor.cli()))
        human = "\n".join(
            f"#{r['id']} {r['kind']:20} {r['scope']:8} 阈值 {r['threshold']} 持续 {r['for_seconds']}s"
            f" 窗口 {r['window_seconds']}s 样本 {r['min_messages']} {'启用' if r['enabled'] else '停用'}"
            for r in rules
        )
        _out({"rules": rules}, as_json, human)
        return
    given = {"threshold": threshold, "for_seconds": for_seconds, "window_seconds": window,
             "min_messages": min_messages, "enabled": enabled}  # fmt: skip
    changes = {k: v for k, v in given.items() if v is not None}
    out = _call(data_dir, lambda s: s.alerts.set_rule(Actor.cli(), rule_id, changes))
    _out(out, as_json, f"规则 #{rule_id} 已更新")


if __name__ == "__main__":
    main()


# -- number services (docs/numbers.md) --------------------------------------------------------------------


@numbers_app.command("check")
def numbers_check(
    account: Annotated[int, typer.Option("--account", help="计费账户 ID")],
    numbers: Annotated[list[str] | None, typer.Argument(help="号码（也可用 --file）")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="每行一个号码的文本文件（最多 1,000 个）")] = None,
    package: Annotated[
        str | None, typer.Option("--package", help="只输出一个结果包：real / silent / empty / risk（CSV）")
    ] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """号码状态检测：实号 / 沉默号 / 空号 / 风险号 / 库无，按账户的号码检测单价计费（库无与上游超时不计费）。"""
    items = list(numbers or [])
    if file is not None:
        items += file.read_text(encoding="utf-8-sig").splitlines()

    async def run(s: Services) -> Any:
        out = await s.numbers.check(Actor.cli(), items, account)
        if package:
            return (await s.numbers.package(Actor.cli(), out["check_id"], package, "csv"))[1]
        return out

    out = _call(data_dir, run)
    if isinstance(out, bytes):
        typer.echo(out.decode("utf-8-sig"), nl=False)
        return
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    from qixin.domain.numbercheck import CLASS_NAMES

    typer.echo(f"检测 {out['check_id']}：{out['total']} 个号码，计费 {out['charged']} 次，{out['fee_li']} 厘")
    for r in out["results"]:
        typer.echo(
            f"  {r['number']}  {CLASS_NAMES[r['class']]}  {r['carrier']} {r['province']}"
            f"{'（携号转网）' if r['ported'] else ''}  置信度 {r['confidence']:.2f}  {' '.join(r['evidence'])}"
        )


@numbers_app.command("token")
def numbers_token(
    account: Annotated[int, typer.Option("--account", help="令牌所属账户 ID")],
    number: Annotated[str, typer.Argument(help="真实号码")],
    ttl: Annotated[int, typer.Option("--ttl", help="有效期（秒）")] = 86_400,
    data_dir: DataDir = None,
) -> None:
    """登记隐私号码令牌（tk_…）：发送时可代替号码，客户看到的始终是令牌。"""
    out = _call(data_dir, lambda s: s.tokens.create(Actor.cli(), number, ttl, account))
    typer.echo(json.dumps(out, ensure_ascii=False))


@numbers_app.command("resolve")
def numbers_resolve(token: Annotated[str, typer.Argument(help="令牌")], data_dir: DataDir = None) -> None:
    """解析令牌对应的真实号码（留审计）。"""
    out = _call(data_dir, lambda s: s.tokens.reveal(Actor.cli(), token))
    typer.echo(json.dumps(out, ensure_ascii=False))


@numbers_app.command("seed")
def numbers_seed(
    number: Annotated[str, typer.Argument(help="测试号码（运营商按号段判断）")],
    remove: Annotated[bool, typer.Option("--remove", help="删除该测试号码")] = False,
    note: Annotated[str, typer.Option(help="说明")] = "",
    data_dir: DataDir = None,
) -> None:
    """闪测测试号码：新增或删除（未设置时内置模拟器号码代替）。"""
    if remove:
        out = _call(data_dir, lambda s: s.flash_tests.remove_seed(Actor.cli(), number))
    else:
        out = _call(data_dir, lambda s: s.flash_tests.add_seed(Actor.cli(), number, note))
    typer.echo(json.dumps(out, ensure_ascii=False))


@numbers_app.command("job")
def numbers_job(
    account: Annotated[int, typer.Option("--account", help="计费账户 ID")],
    file: Annotated[Path, typer.Option("--file", help="CSV / TXT（每行一个号码）或 XLSX（第一列），最多 1,000,000 个")],
    data_dir: DataDir = None,
) -> None:
    """批量号码检测：预扣费用，分片检测（中断后从未完成的分片继续），完成后输出汇总。"""
    data = file.read_bytes()

    async def run(s: Services) -> Any:
        out = await s.numcheck_jobs.submit(Actor.cli(), file.name, data, account)
        while await s.numcheck_jobs.run_once():
            pass
        return await s.numcheck_jobs.get(Actor.cli(), out["job_id"])

    typer.echo(json.dumps(_call(data_dir, run), ensure_ascii=False))


@exports_app.command("create")
def exports_create(
    account_id: Annotated[int | None, typer.Option("--account-id", help="只导出该账户（默认全部账户）")] = None,
    status: Annotated[str | None, typer.Option("--status", help="状态，如 delivered、undelivered")] = None,
    batch_id: Annotated[str | None, typer.Option("--batch-id", help="批次 ID")] = None,
    since: Annotated[str | None, typer.Option("--since", help="起始时间（含）")] = None,
    until: Annotated[str | None, typer.Option("--until", help="结束时间（不含）")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv 或 xlsx")] = "csv",
    data_dir: DataDir = None,
) -> None:
    """创建导出任务并在本进程中运行到完成，输出任务与文件路径（操作员：号码不脱敏）。"""
    from qixin.services.queries import MessageFilter

    async def run(s: Services) -> Any:
        f = MessageFilter(batch_id=batch_id, status=status, since=since, until=until, account_id=account_id)
        job = await s.exports.create(Actor.cli(), f, fmt)
        while await s.exports.run_pending():
            pass
        out = await s.exports.progress(Actor.cli(), job["id"])
        if out["status"] == "done":
            out["path"] = str((await s.exports.file(Actor.cli(), job["id"]))[0])
        return out

    typer.echo(json.dumps(_call(data_dir, run), ensure_ascii=False))


@exports_app.command("list")
def exports_list(data_dir: DataDir = None) -> None:
    """最近的导出任务（员工侧）。"""
    typer.echo(json.dumps(_call(data_dir, lambda s: s.exports.listing(Actor.cli())), ensure_ascii=False))
