"""The real local network for the SDK's tests: the repository's own ``npm start`` (scripts/start.ts).

One network per test run, in temporary folders, on ports it picks: the stack (Temporal,
MongoDB-wire server, NATS, anvil), the rewards contracts, the control worker, the gateway, the
edge and one node (``local-node-1``) serving the tiny fixture model on the CPU, with 1-minute
epochs so a reward settles within two minutes. The node's operator key is made by the SDK
(``Operator.create``) before the start, so the key the tests sign with is the node's own.

Nothing here re-implements the launcher: it runs it as a newcomer would and reads the endpoints
it writes to ``<data dir>/endpoints.json``.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitblock import Operator
from gitblock.cli import main

REPO = Path(os.environ.get("GITBLOCK_REPO") or Path(__file__).resolve().parents[3])
START_TIMEOUT_SECONDS = 300
# The project's own reward-cycle test uses 1-minute epochs; 30 s ones fell behind on a loaded machine.
EPOCH = "1m"
MODEL = "gitblock-tiny"
NODE_ID = "local-node-1"
# Variables that would point the launcher at another network (the tests' own, or a developer's).
_FOREIGN = ("TEMPORAL_", "NATS_", "MONGODB_", "CHAIN_", "GATEWAY_", "EDGE_", "GITBLOCK_")


@dataclass
class LocalNetwork:
    """The running network, as the tests see it."""

    gateway_url: str
    rpc_url: str
    temporal_address: str
    temporal_namespace: str
    epoch_seconds: int
    data_dir: Path
    key_file: Path
    operator: Operator
    node_id: str
    log_file: Path

    def log_tail(self, chars: int = 4000) -> str:
        """The launcher's latest output, for failure messages."""
        return self.log_file.read_text(errors="replace")[-chars:]

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call to anvil."""
        answer = httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=15).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def complete(self, content: str) -> dict[str, Any]:
        """Serves one chat completion with a fresh API key: a request that accrues a reward to the node's operator.

        A 503 (the loaded machine's node missed its deadline) is retried: the SDK is under test here, not routing.
        """
        key = httpx.post(f"{self.gateway_url}/v1/keys", json={"label": "sdk tests"}, timeout=15).json()["key"]
        for _ in range(3):
            response = httpx.post(
                f"{self.gateway_url}/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 8, "temperature": 0},
                timeout=60,
            )
            if response.status_code != 503:
                break
        assert response.status_code == 200, f"{response.text}\n{self.log_tail()}"
        answer: dict[str, Any] = response.json()
        return answer


def gitblock(network: LocalNetwork, *args: str) -> subprocess.CompletedProcess[str]:
    """The `gitblock` command on this network, with the node's key, run in this process (web3 imports once)."""
    common = ["--gateway", network.gateway_url, "--key-file", str(network.key_file), "--rpc", network.rpc_url]
    stdout, stderr = io.StringIO(), io.StringIO()
    # Before the command's name: options given after it (a test's own --key-file) take precedence.
    argv = [*common, *args]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return subprocess.CompletedProcess(["gitblock", *argv], code, stdout.getvalue(), stderr.getvalue())


def gitblock_script(network: LocalNetwork, *args: str) -> subprocess.CompletedProcess[str]:
    """The same through the console script that `pip install` put beside this Python."""
    script = Path(sys.executable).parent / "gitblock"
    common = ["--gateway", network.gateway_url, "--key-file", str(network.key_file), "--rpc", network.rpc_url]
    return subprocess.run([str(script), *common, *args], capture_output=True, text=True, timeout=180)


def _launcher_env(data_dir: Path, node_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update(
        GITBLOCK_DATA_DIR=str(data_dir),
        GITBLOCK_NODE_HOME=str(node_home),
        GITBLOCK_START_MODEL=MODEL,
        GITBLOCK_NODE_GPU="cpu",
        GITBLOCK_NODE_THREADS="1",
        GITBLOCK_NODE_MAX_PARALLEL="2",
        GITBLOCK_NODE_SHUTDOWN_GRACE="5",
        # Port 0: the gateway and the edge take what the OS gives; the stack falls back to free ports.
        GATEWAY_PORT="0",
        EDGE_PORT="0",
    )
    for name in ("GITBLOCK_MODEL_DIR", "GITBLOCK_TOOLS_DIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _stop_with_parent() -> None:
    """In the launcher's process, before it runs: Ctrl-C it when pytest dies, however pytest dies (Linux)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


@pytest.fixture(scope="session")
def network(request: pytest.FixtureRequest) -> Iterator[LocalNetwork]:
    """Starts ``npm start`` once for the session and stops it (Ctrl-C, as a person would) at the end.

    After a failed test its folder (the launcher's output, the services' logs) is kept and named.
    """
    node = shutil.which("node")
    assert node, "the SDK tests start the repository's local network, which needs Node.js 20 on the PATH"
    root = Path(tempfile.mkdtemp(prefix="gitblock-sdk-"))
    data_dir, node_home = root / "data", root / "home"
    data_dir.mkdir()
    operator = Operator.create(node_home / "operator.key")
    log_file = root / "launcher.log"
    with log_file.open("wb") as log:
        child = subprocess.Popen(
            [node, "--import", "tsx", str(REPO / "scripts" / "start.ts"), "--epoch", EPOCH],
            cwd=REPO,
            env=_launcher_env(data_dir, node_home),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_stop_with_parent,
        )
    endpoints_file = data_dir / "endpoints.json"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        # The file appears once the network is up: the node registered and the gateway lists its model.
        while not endpoints_file.exists():
            if child.poll() is not None:
                pytest.fail(f"npm start exited ({child.returncode}) before the network was up:\n{log_file.read_text(errors='replace')[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"npm start was not up within {START_TIMEOUT_SECONDS} s:\n{log_file.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)
        time.sleep(0.2)  # written in one call, but give the writer its moment
        endpoints = json.loads(endpoints_file.read_text())
        yield LocalNetwork(
            gateway_url=endpoints["gatewayUrl"],
            rpc_url=endpoints["rpcUrl"],
            temporal_address=endpoints["temporalAddress"],
            temporal_namespace=endpoints["temporalNamespace"],
            epoch_seconds=endpoints["epochSeconds"],
            data_dir=data_dir,
            key_file=node_home / "operator.key",
            operator=operator,
            node_id=NODE_ID,
            log_file=log_file,
        )
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if request.session.testsfailed:
            print(f"\nthe SDK tests' network left its output and logs in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def earned(network: LocalNetwork) -> dict[str, Any]:
    """A request served by the node early in the run, so its epoch settles while other tests run."""
    return network.complete("Say something about the number 7.")


@pytest.fixture
def anyio_backend() -> str:
    """The async tests run on asyncio (anyio's pytest plugin, which httpx brings)."""
    return "asyncio"
