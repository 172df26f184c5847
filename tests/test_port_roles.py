"""Distributed mode with the customer SMPP port: `qixin api --smpp-port P` holds the port (and accepts),
`qixin dispatcher --simulators` submits and stores receipts in another process; each submit_sm gets
its receipt through the API process, on SQLite (two processes on one WAL file) and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import smpplib.client
from conftest import free_port, migrate_from_template


def _customer(port: int) -> tuple[list[Any], list[Any]]:
    resps: list[Any] = []
    delivered: list[Any] = []
    c = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    c.set_message_sent_handler(lambda pdu: resps.append(pdu))
    c.set_message_received_handler(lambda pdu: delivered.append(pdu))
    c.set_error_pdu_handler(lambda pdu: None)
    c.connect()
    try:
        c.bind_transceiver(system_id="dist01", password="pw")
        text = "【企信】分布式直连".encode("utf-16-be")
        for to in ("8613800138000", "8618612345678", "8618912345678"):  # 移动, 联通, 电信
            c.send_message(source_addr="1069", destination_addr=to, short_message=text, data_coding=8,
                           registered_delivery=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while (len(resps) < 3 or len(delivered) < 3) and time.monotonic() < deadline:
            c.read_once()
        c.unbind()
    finally:
        c.disconnect()
    return resps, delivered


async def test_port_in_the_api_process_receipts_from_the_dispatcher(db_url: str, tmp_path: Path) -> None:
    env = dict(os.environ, QIXIN_SENDING_WINDOWS="off", QIXIN_DATABASE_URL=db_url)
    if db_url.startswith("sqlite"):
        env.pop("QIXIN_DATABASE_URL")
        migrate_from_template(f"sqlite:///{tmp_path / 'data' / 'qixin.db'}")  # the processes find it migrated
    data = str(tmp_path / "data")
    cli = [sys.executable, "-m", "qixin.cli"]
    created = subprocess.run(  # noqa: ASYNC221 - CLI calls before any process runs
        [*cli, "account", "create", "--name", "直连", "--signature", "企信", "--balance", "100", "--price", "0.035",
         "--data-dir", data, "--json"], env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    account = json.loads(created.stdout)["account_id"]
    subprocess.run(  # noqa: ASYNC221
        [*cli, "connection", "add", "--account", str(account), "--protocol", "smpp", "--login", "dist01",
         "--secret", "pw", "--data-dir", data], env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    port, smpp = free_port(), free_port()
    quiet = subprocess.DEVNULL
    dispatcher = subprocess.Popen(  # noqa: ASYNC220
        [*cli, "dispatcher", "--simulators", "--data-dir", data], env=env, stdout=quiet, stderr=quiet
    )
    api = subprocess.Popen(  # noqa: ASYNC220
        [*cli, "api", "--port", str(port), "--smpp-port", str(smpp), "--cmpp-port", "0", "--data-dir", data],
        env=env, stdout=quiet, stderr=quiet,
    )  # fmt: skip
    try:
        for _ in range(300):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", smpp)) == 0:
                    break
            await asyncio.sleep(0.1)
        resps, delivered = await asyncio.wait_for(asyncio.to_thread(_customer, smpp), 90)
        assert [p.status for p in resps] == [0, 0, 0]
        ids = {p.message_id.decode() for p in resps}
        assert {p.receipted_message_id.decode() for p in delivered} == ids  # one receipt per submit_sm
    finally:
        for proc in (api, dispatcher):
            proc.send_signal(signal.SIGTERM)
        for proc in (api, dispatcher):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
