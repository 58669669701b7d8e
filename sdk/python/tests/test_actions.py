"""Signed operator actions against the real gateway: registration, reinstate and retire, and every refusal."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time

import httpx
import pytest

from gitblock import ApiError, Network, Node, Operator

from .conftest import MODEL, REPO, LocalNetwork

HASH = "AB" * 32  # any sha256; bare and upper case on purpose: the SDK sends 0x + lowercase


def _new_node_id() -> str:
    return f"sdk-{secrets.token_hex(5)}"


def _projected(net: Network, node_id: str, state: str | None = None) -> Node:
    """The node once its actor has projected it (and, if given, in `state`)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            node = net.node(node_id)
            if state is None or node.state == state:
                return node
        except ApiError as err:
            if err.code != "not_found":
                raise
        assert time.monotonic() < deadline, f"node {node_id} not projected{' as ' + state if state else ''} within 20 s"
        time.sleep(0.2)


def test_register_a_node_and_register_it_again(network: LocalNetwork) -> None:
    operator, node_id = Operator.generate(), _new_node_id()
    with Network(network.gateway_url) as net:
        first = net.register(operator, node_id, [MODEL], [HASH], gpu="NVIDIA H100 80GB HBM3", version="0.1.0")
        assert (first.node_id, first.operator, first.status) == (node_id, operator.address, "registered")
        again = net.register(operator, node_id, [MODEL], [HASH], gpu="NVIDIA H100 80GB HBM3", version="0.1.1")
        assert again.status == "re-registered"
        node = _projected(net, node_id)
        assert (node.operator, node.models, node.gpu, node.state) == (operator.address, [MODEL], "NVIDIA H100 80GB HBM3", "probation")

        # The id is the first operator's: another key cannot take it (or its rewards).
        with pytest.raises(ApiError) as taken:
            net.register(Operator.generate(), node_id, [MODEL], [HASH], gpu="cpu", version="0.1.0")
        assert (taken.value.code, taken.value.status) == ("conflict", 409)


def test_reinstate_and_retire_are_refused_to_another_key(network: LocalNetwork) -> None:
    with Network(network.gateway_url) as net:
        for act in (net.reinstate, net.retire):
            with pytest.raises(ApiError) as refused:
                act(Operator.generate(), network.node_id)
            assert (refused.value.code, refused.value.status) == ("forbidden", 403)
            assert network.operator.address in str(refused.value)
        # Still serving: the stranger changed nothing.
        assert net.node(network.node_id).state in ("probation", "active")


def test_actions_on_an_unknown_node_are_not_found(network: LocalNetwork) -> None:
    with Network(network.gateway_url) as net, pytest.raises(ApiError) as refused:
        net.reinstate(network.operator, "node-that-never-was")
    assert (refused.value.code, refused.value.status) == ("not_found", 404)


def test_a_node_that_is_not_suspended_has_nothing_to_reinstate(network: LocalNetwork) -> None:
    with Network(network.gateway_url) as net, pytest.raises(ApiError) as refused:
        net.reinstate(network.operator, network.node_id)
    # Signed right, by the right key: the network itself refuses, and says why.
    assert (refused.value.code, refused.value.status) == ("conflict", 409)
    assert "not suspended" in refused.value.message


def test_a_signed_action_is_good_once(network: LocalNetwork) -> None:
    body = network.operator.sign_action(31337, network.node_id, "reinstate")
    url = f"{network.gateway_url}/v1/nodes/{network.node_id}/reinstate"
    assert httpx.post(url, json=body).json()["error"]["code"] == "conflict"  # accepted as signed, refused as a decision
    replayed = httpx.post(url, json=body)
    assert (replayed.status_code, replayed.json()["error"]["code"]) == (401, "signature_rejected")
    forged = {**body, "action": {**body["action"], "action": "retire"}}
    refused = httpx.post(f"{network.gateway_url}/v1/nodes/{network.node_id}/retire", json=forged)
    assert refused.status_code in (401, 403), refused.text  # the signature no longer covers the message


def test_a_suspended_node_is_reinstated_only_after_its_cool_down_and_retired_for_good(network: LocalNetwork) -> None:
    operator, node_id = Operator.generate(), _new_node_id()
    with Network(network.gateway_url) as net:
        net.register(operator, node_id, [MODEL], [HASH], gpu="cpu", version="0.1.0")
        _projected(net, node_id)
        node = shutil.which("node")
        assert node
        suspended = subprocess.run(
            [node, "--import", "tsx", str(REPO / "sdk" / "python" / "tests" / "suspend-node.ts"), network.temporal_address, network.temporal_namespace, node_id],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert suspended.returncode == 0, suspended.stderr
        assert _projected(net, node_id, "suspended").state == "suspended"

        with pytest.raises(ApiError) as too_soon:
            net.reinstate(operator, node_id)
        assert (too_soon.value.code, too_soon.value.status) == ("conflict", 409)
        assert "may be reinstated only 10 minutes later" in too_soon.value.message
        assert too_soon.value.retry_after is not None and 500 < too_soon.value.retry_after <= 600

        retired = net.retire(operator, node_id)
        assert (retired.node_id, retired.action, retired.state) == (node_id, "retire", "retired")
        assert _projected(net, node_id, "retired").state == "retired"
        with pytest.raises(ApiError) as again:
            net.retire(operator, node_id)
        assert again.value.code == "conflict" and "already retired" in again.value.message
