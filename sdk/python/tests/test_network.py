"""`Network` and `AsyncNetwork` against the real gateway: typed answers, and refusals as exceptions with the API's code."""

from __future__ import annotations

import socket

import pytest

from gitblock import ApiError, AsyncNetwork, GatewayUnreachableError, Network, Operator

from .conftest import MODEL, LocalNetwork


def test_models_nodes_node_status_and_info(network: LocalNetwork) -> None:
    with Network(network.gateway_url) as net:
        models = net.models()
        tiny = next(m for m in models if m.id == MODEL)
        assert tiny.gitblock.nodes >= 1 and tiny.gitblock.max_context > 0

        nodes = net.nodes()
        mine = net.nodes(operator=network.operator.address)
        assert [n.id for n in mine] == [network.node_id]
        assert network.node_id in [n.id for n in nodes]
        assert [n.id for n in net.nodes(model=MODEL, operator=network.operator.address.lower())] == [network.node_id]

        node = net.node(network.node_id)
        assert node.operator == network.operator.address
        assert node.models == [MODEL]
        assert node.state in ("probation", "active")
        assert 0 <= node.reputation <= 1
        assert node.live is True
        assert node.gpu == "cpu"  # the hardware it registered with

        health = net.status()
        assert health.status == "ok", health.reasons
        assert MODEL in health.models and health.live_nodes >= 1

        assert net.info().chain_id == 31337
        assert net.chain_id() == 31337


def test_rewards_of_an_operator_that_earned_nothing(network: LocalNetwork) -> None:
    stranger = Operator.generate()
    with Network(network.gateway_url) as net:
        rewards = net.rewards(stranger)
    assert rewards.operator == stranger.address
    assert (rewards.accrued.amount, rewards.claimable, rewards.claimed, rewards.epochs) == (0, 0, 0, [])


@pytest.mark.anyio
async def test_the_async_client_gives_the_same_answers(network: LocalNetwork) -> None:
    async with AsyncNetwork(network.gateway_url) as anet:
        node = await anet.node(network.node_id)
        assert node.id == network.node_id and node.operator == network.operator.address
        assert [n.id for n in await anet.nodes(operator=network.operator.address)] == [network.node_id]
        assert MODEL in [m.id for m in await anet.models()]
        assert (await anet.status()).status == "ok"
        assert await anet.chain_id() == 31337
        rewards = await anet.rewards(network.operator.address)
        assert rewards.operator == network.operator.address
        with pytest.raises(ApiError) as refused:
            await anet.node("no-such-node")
        assert (refused.value.code, refused.value.status) == ("not_found", 404)


def test_an_unknown_node_is_not_found(network: LocalNetwork) -> None:
    with Network(network.gateway_url) as net, pytest.raises(ApiError) as refused:
        net.node("node-that-never-was")
    assert refused.value.code == "not_found"
    assert refused.value.status == 404
    assert "node-that-never-was" in str(refused.value)


def test_bad_input_is_refused_with_the_parameter_named(network: LocalNetwork) -> None:
    with Network(network.gateway_url) as net:
        with pytest.raises(ApiError) as bad_id:
            net.node("Not A Node/../x")
        assert (bad_id.value.code, bad_id.value.status, bad_id.value.param) == ("invalid_body", 400, "nodeId")
        with pytest.raises(ApiError) as bad_operator:
            net.rewards("0xnot-an-address")
        assert (bad_operator.value.code, bad_operator.value.param) == ("invalid_body", "operator")
        with pytest.raises(ApiError) as bad_filter:
            net.nodes(operator="0x123")
        assert bad_filter.value.param == "operator"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_gateway_that_is_down_is_named(network: LocalNetwork) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with Network(url, timeout=5) as net, pytest.raises(GatewayUnreachableError) as down:
        net.nodes()
    assert down.value.code == "gateway_unreachable"
    assert url in str(down.value)


@pytest.mark.anyio
async def test_a_gateway_that_is_down_is_named_async(network: LocalNetwork) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with AsyncNetwork(url, timeout=5) as anet:
        with pytest.raises(GatewayUnreachableError) as down:
            await anet.status()
    assert url in str(down.value)


def test_a_url_that_is_no_gateway_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="http"):
        Network("ftp://example.org")
