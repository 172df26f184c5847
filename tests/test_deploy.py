"""deploy/compose.yaml and deploy/k8s/*.yaml are true: every qixin service's command of the compose file runs
as a local process on loopback (PostgreSQL and Redis of the tests in place of the containers, free ports in
place of the published ones), a message sent to the API is submitted by a dispatcher to the simulator, its
receipt stored and its webhook pushed by the worker; the Kubernetes manifests run the same commands with the
same settings."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import pytest
import yaml
from conftest import free_port, need, redis_available

from qixin.domain.signing import signed_headers

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose.yaml"
K8S = ROOT / "deploy" / "k8s"
REDIS = "redis://127.0.0.1:6379/0"
CLI = [sys.executable, "-m", "qixin.cli"]
SECRET_KEY = "ZGVwbG95LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchISE="  # base64 of 32 bytes
ROLES = ("api", "dispatcher", "worker", "migrate")  # the qixin services both files must have
_VAR = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == "-":
            return arg
        if op == "?":
            raise AssertionError(f"{name} must be set: {arg}")
        return ""

    return _VAR.sub(one, value)


def compose(env: dict[str, str]) -> dict[str, Any]:
    """The compose services with anchors merged and variables interpolated."""
    doc = yaml.safe_load(COMPOSE.read_text())

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return interpolate(node, env) if isinstance(node, str) else node

    return dict(walk(doc)["services"])


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def qixin_argv(container: dict[str, Any]) -> list[str]:
    """A container's qixin command line: ``command`` + ``args``, or the ``exec qixin …`` of an ``sh -c``."""
    argv = [*container.get("command", []), *container.get("args", [])]
    if argv[:2] == ["sh", "-c"]:
        script = argv[2]
        argv = shlex.split(script[script.index("exec qixin") + len("exec ") :])
    return [str(a) for a in argv]


def test_compose_has_every_role_and_scales_out() -> None:
    services = compose({"QIXIN_SECRET_KEY": SECRET_KEY})
    assert {"postgres", "redis", *ROLES} <= services.keys()
    api = services["api"]["command"]
    assert api[:2] == ["qixin", "api"] and int(api[api.index("--workers") + 1]) >= 2
    assert int(services["dispatcher"]["deploy"]["replicas"]) >= 2
    assert services["dispatcher"]["command"] == ["qixin", "dispatcher", "--no-workers"]
    assert services["worker"]["command"] == ["qixin", "worker"]
    for name in ("api", "dispatcher", "worker"):
        env = services[name]["environment"]
        assert env["QIXIN_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["QIXIN_REDIS_URL"].startswith("redis://") and env["QIXIN_SECRET_KEY"] == SECRET_KEY
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    with pytest.raises(AssertionError, match="QIXIN_SECRET_KEY"):
        compose({})  # no default key: every process of one platform must be given the same one


def test_k8s_manifests_run_the_compose_commands_with_the_same_settings() -> None:
    services = compose({"QIXIN_SECRET_KEY": SECRET_KEY})
    docs = k8s_docs()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Service", "qixin-api"), ("ConfigMap", "qixin"), ("Secret", "qixin")} <= kinds
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "qixin")["data"]
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "qixin")["stringData"]
    shared = {k for k in services["worker"]["environment"] if k in services["api"]["environment"]}
    assert shared - {"QIXIN_NODE_ID", "QIXIN_HOST"} <= {*config, *secret}, "a shared setting is missing in k8s"
    assert "QIXIN_SECRET_KEY" in secret and "QIXIN_DATABASE_URL" in secret  # secrets not in the ConfigMap
    seen: dict[str, list[str]] = {}
    for d in docs:
        spec = d.get("spec", {})
        pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get("template", {})
        for c in pod.get("containers", []) if pod else []:
            argv = qixin_argv(c)
            if argv[:1] == ["qixin"] and argv[1] in ROLES:
                seen[argv[1]] = argv
                refs = {e.get("configMapRef", e.get("secretRef", {})).get("name") for e in c.get("envFrom", [])}
                assert refs == {"qixin"}, f"{d['metadata']['name']}: settings from the ConfigMap and the Secret"
    for role in ROLES:
        want = services[role]["command"]
        got = seen.get(want[1])
        assert got is not None, f"no Kubernetes workload runs qixin {want[1]}"
        if role == "api":  # the workers and host are the same; pods are scaled by replicas too
            assert got[got.index("--workers") + 1] == want[want.index("--workers") + 1]
            assert got[got.index("--host") + 1] == "0.0.0.0"
        else:
            assert got == want, (got, want)
    api = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "qixin-api")
    assert api["spec"]["replicas"] >= 2
    dispatchers = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "qixin-dispatcher")
    assert dispatchers["spec"]["replicas"] >= 2


def customer_ports_missing(docs: list[dict[str, Any]], wanted: dict[str, int]) -> list[str]:
    """What the qixin-api StatefulSet and Service lack of ``wanted`` (protocol -> port): the
    ``QIXIN_<P>_SERVER_PORT`` env entry, the named containerPort, the Service port targeting it."""
    api = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "qixin-api")
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "qixin-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: str(e.get("value")) for e in container.get("env", [])}
    container_ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    service_ports = {p.get("targetPort"): p["port"] for p in service["spec"]["ports"]}
    missing = []
    for protocol, port in wanted.items():
        if env.get(f"QIXIN_{protocol.upper()}_SERVER_PORT") != str(port):
            missing.append(f"env QIXIN_{protocol.upper()}_SERVER_PORT={port}")
        if container_ports.get(protocol) != port:
            missing.append(f"containerPort {protocol} {port}")
        if service_ports.get(protocol) != port:
            missing.append(f"Service port {protocol} {port}")
    return missing


def test_k8s_api_lists_every_customer_port() -> None:
    from qixin.settings import Settings

    # every customer port setting (smpp, cmpp, sgip, smgp …) with its default, as the compose file publishes it
    defaults = {
        name.removesuffix("_server_port"): int(field.default)
        for name, field in Settings.model_fields.items()
        if name.endswith("_server_port")
    }
    assert {"smpp": 2775, "cmpp": 7890, "sgip": 8801, "smgp": 8890}.items() <= defaults.items()
    api_env = compose({"QIXIN_SECRET_KEY": SECRET_KEY})["api"]["environment"]
    published = {p: int(api_env[f"QIXIN_{p.upper()}_SERVER_PORT"]) for p in defaults}
    assert published == defaults, "the compose file's api service publishes every customer port at its default"
    docs = k8s_docs()
    assert customer_ports_missing(docs, published) == []
    # the check itself fails on a manifest without one of them
    for d in docs:
        if d["kind"] == "Service" and d["metadata"]["name"] == "qixin-api":
            d["spec"]["ports"] = [p for p in d["spec"]["ports"] if p.get("targetPort") != "smgp"]
    assert customer_ports_missing(docs, published) == ["Service port smgp 8890"]


class Hooks(BaseHTTPRequestHandler):
    """A customer's webhook endpoint: records every POSTed body."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def local(services: dict[str, Any], name: str, replica: int, ports: dict[tuple[str, int, str], int], pg_url: str,
          data: Path, tag: str) -> tuple[list[str], dict[str, str]]:  # fmt: skip
    """One compose service's command and environment, moved to loopback: the containers' host names become
    127.0.0.1 (the test's PostgreSQL and Redis), each listening port a free port of its own, the shared
    volume a directory."""
    svc = services[name]

    def port(owner: str, number: str, rep: int = 0) -> str:
        return str(ports.setdefault((owner, rep, number), free_port()))

    env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
    for key, value in list(env.items()):
        if key == "QIXIN_DATABASE_URL":
            assert "@postgres:5432/" in value
            env[key] = pg_url
        elif key == "QIXIN_REDIS_URL":
            assert "//redis:6379/" in value
            env[key] = REDIS
        elif key == "QIXIN_DATA_DIR":
            assert value == "/data" and "qixin-data:/data" in svc["volumes"]
            env[key] = str(data)
        elif key == "QIXIN_HOST" and value == "0.0.0.0":
            env.pop(key)
        elif key == "QIXIN_SMPP_HOST":
            assert value in services, f"{name}: {key} names no service"
            env[key] = "127.0.0.1"
        elif key == "QIXIN_SMPP_PORT":
            env[key] = port(env.get("QIXIN_SMPP_HOST", "simulator"), value)
        elif key in (
            "QIXIN_SMPP_SERVER_PORT", "QIXIN_CMPP_SERVER_PORT", "QIXIN_SGIP_SERVER_PORT", "QIXIN_SMGP_SERVER_PORT",
            "QIXIN_METRICS_PORT",
        ):  # fmt: skip
            env[key] = port(name, value, replica)
    if "QIXIN_SMPP_HOST" in svc.get("environment", {}):
        env["QIXIN_SMPP_PORT"] = port(svc["environment"]["QIXIN_SMPP_HOST"], svc["environment"]["QIXIN_SMPP_PORT"])
    argv = [str(a) for a in svc["command"]]
    assert argv[0] == "qixin"
    for i, a in enumerate(argv):
        if a == "--host":
            argv[i + 1] = "127.0.0.1"
        if a == "--port" and argv[i - 1] != "--host":
            argv[i + 1] = port(name, argv[i + 1], replica)
    # test-only: nothing deferred to 08:00 by the sending window, Redis keys of our own
    env |= {"QIXIN_SENDING_WINDOWS": "off", "QIXIN_FLOW_PREFIX": f"qixin-flow-{tag}",
            "QIXIN_LIMITS_PREFIX": f"qixin-limits-{tag}"}  # fmt: skip
    return [*CLI, *argv[1:]], env


def started(procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> str:
    """Why the services did not come up: each one that exited, with its exit code and the end of its log."""
    dead = [f"{' '.join(map(str, p.args))[-80:]} exited {p.returncode}" for p in procs if p.poll() is not None]
    logs = "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}" for f in sorted(tmp_path.glob("*.log")))
    return f"a service did not start: {dead or 'none exited; the deadline passed'}\n{logs}"


# The compose file's scale-out variables: ``make test`` runs one dispatcher replica (each qixin process costs
# its Python start-up on a 2-core CI machine), ``make soak`` the file's default of 2. The API keeps its 2
# workers in both (every qixin process, supervisor or single API process, exits 0 on SIGTERM).
SCALES = [
    {"QIXIN_DISPATCHERS": "1"},
    pytest.param({}, marks=pytest.mark.soak),
]


@pytest.mark.pg
@pytest.mark.parametrize("scale", SCALES, ids=["one-dispatcher", "compose-defaults"])
async def test_compose_services_run_as_local_processes_and_deliver(
    pg_url: str, tmp_path: Path, scale: dict[str, str]
) -> None:
    need(redis_available(REDIS))
    services = compose({"QIXIN_SECRET_KEY": SECRET_KEY, **scale})
    tag = uuid.uuid4().hex[:8]
    ports: dict[tuple[str, int, str], int] = {}
    data = tmp_path / "data"  # the shared volume (qixin-data:/data)
    base = {k: v for k, v in os.environ.items() if not k.startswith("QIXIN_")}

    def start(name: str, replica: int = 0, wait: bool = False) -> subprocess.Popen[bytes]:
        argv, env = local(services, name, replica, ports, pg_url, data, tag)
        log = open(tmp_path / f"{name}-{replica}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, env=base | env, stdout=log, stderr=log)
        if wait:
            assert proc.wait(timeout=120) == 0, (tmp_path / f"{name}-{replica}.log").read_text()
        return proc

    hooks = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    Hooks.bodies = []
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        start("migrate", wait=True)  # depends_on: service_completed_successfully
        _, env = local(services, "worker", 0, ports, pg_url, data, tag)
        created = subprocess.run(  # noqa: ASYNC221 - before the roles start
            [*CLI, "account", "create", "--name", "部署测试", "--signature", "企信", "--balance", "10",
             "--callback-url", f"http://127.0.0.1:{hooks.server_address[1]}/hook", "--json"],
            env=base | env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        acct = json.loads(created.stdout)
        procs.append(start("simulator"))
        procs += [start("dispatcher", r) for r in range(int(services["dispatcher"]["deploy"]["replicas"]))]
        procs.append(start("worker"))
        procs.append(start("api"))
        api_port = ports[("api", 0, "8000")]
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as http:
            while True:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert all(p.poll() is None for p in procs) and time.monotonic() < deadline, started(procs, tmp_path)
                await asyncio.sleep(0.2)
            body = orjson.dumps({"to": "13800138000", "content": "部署验证", "signature": "企信"})
            headers = signed_headers(acct["app_key"], acct["app_secret"], "POST", "/v1/sms", body)
            resp = await http.post("/v1/sms", content=body, headers=headers)
            assert resp.status_code == 200, resp.text
            mid = resp.json()["accepted"][0]["id"]
            path = f"/v1/sms/{mid}"
            while True:
                got = (
                    await http.get(path, headers=signed_headers(acct["app_key"], acct["app_secret"], "GET", path))
                ).json()
                pushed = [b for b in Hooks.bodies if mid.encode() in b]
                # the simulator draws an outcome (most delivered, some EXPIRED / UNDELIV): any receipt is final
                if got["status"] in ("delivered", "undelivered", "expired") and pushed:
                    break
                assert time.monotonic() < deadline, (got, Hooks.bodies)
                await asyncio.sleep(0.1)
            assert got["channel"] == "smpp-sim"  # the simulator service, reached through QIXIN_SMPP_HOST/PORT
            assert any(e.get("status") == got["status"] for b in pushed for e in orjson.loads(b)["events"])
            # the customer SMPP port (QIXIN_SMPP_SERVER_PORT) is open, in one of the API processes
            _, writer = await asyncio.open_connection("127.0.0.1", ports[("api", 0, "2775")])
            writer.close()
            metrics = await http.get(f"http://127.0.0.1:{ports[('dispatcher', 0, '9100')]}/metrics")
            assert metrics.status_code == 200  # each dispatcher replica has its own metrics endpoint
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in procs:
            try:
                codes.append(proc.wait(timeout=30))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(None)
        hooks.shutdown()
    assert codes[1:] == [0] * (len(procs) - 1), codes  # every qixin role stops cleanly on SIGTERM
