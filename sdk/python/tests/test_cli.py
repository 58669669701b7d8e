"""The `gitblock` command: tables for people, `--json` for machines, refusals with the API's code and exit 1."""

from __future__ import annotations

import json
import socket

from gitblock import Network, Operator

from .conftest import LocalNetwork, gitblock, gitblock_script


def test_nodes_and_node_as_tables_and_json(network: LocalNetwork) -> None:
    table = gitblock(network, "nodes")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split() == ["NODE", "STATE", "LIVE", "REPUTATION", "SERVED", "HARDWARE", "MODELS"]
    assert row.split()[0] == network.node_id and "cpu" in row.split()

    listed = json.loads(gitblock(network, "nodes", "--json").stdout)
    assert [n["id"] for n in listed] == [network.node_id]
    assert listed[0]["operator"] == network.operator.address
    everyone = json.loads(gitblock(network, "nodes", "--all", "--model", "gitblock-tiny", "--json").stdout)
    assert network.node_id in [n["id"] for n in everyone]

    detail = gitblock(network, "node", network.node_id)
    assert detail.returncode == 0, detail.stderr
    assert f"operator     {network.operator.address}" in detail.stdout and "hardware     cpu" in detail.stdout
    one = json.loads(gitblock(network, "node", network.node_id, "--json").stdout)
    assert one["id"] == network.node_id and one["live"] is True


def test_refusals_exit_1_with_the_reason_and_code(network: LocalNetwork) -> None:
    unknown = gitblock(network, "node", "node-that-never-was")
    assert unknown.returncode == 1
    assert "node-that-never-was" in unknown.stderr and "(not_found)" in unknown.stderr

    refused = gitblock(network, "reinstate", network.node_id, "--json")
    assert refused.returncode == 1
    error = json.loads(refused.stderr)["error"]
    assert (error["code"], error["status"]) == ("conflict", 409) and "not suspended" in error["message"]

    stranger = Operator.generate()
    key_file = network.data_dir / "stranger.key"
    key_file.write_text("0x" + bytes(stranger.account.key).hex() + "\n")
    key_file.chmod(0o600)
    forbidden = gitblock(network, "retire", network.node_id, "--key-file", str(key_file))
    assert forbidden.returncode == 1 and "(forbidden)" in forbidden.stderr
    with Network(network.gateway_url) as net:
        assert net.node(network.node_id).state != "retired"

    missing = gitblock(network, "rewards", "--key-file", str(network.data_dir / "none.key"))
    assert missing.returncode == 1 and "(operator_key_missing)" in missing.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = gitblock_script(network, "nodes", "--all", "--gateway", f"http://127.0.0.1:{port}")
    assert down.returncode == 1
    assert f"127.0.0.1:{port}" in down.stderr and "(gateway_unreachable)" in down.stderr
