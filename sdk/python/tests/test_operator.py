"""The operator key: the node's own file, read under the node's rules, and signatures made from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitblock import Network, Operator, OperatorKeyError

from .conftest import LocalNetwork


def test_the_key_file_the_node_uses_is_the_operator_the_network_knows(network: LocalNetwork) -> None:
    loaded = Operator.load(network.key_file)
    assert loaded.address == network.operator.address
    # The node started with the key the SDK created, and registered under its address.
    with Network(network.gateway_url) as net:
        assert net.node(network.node_id).operator == loaded.address
    os.environ["GITBLOCK_NODE_KEY_FILE"] = str(network.key_file)
    try:
        assert Operator.load().address == loaded.address
    finally:
        del os.environ["GITBLOCK_NODE_KEY_FILE"]


def test_create_writes_a_private_file_and_never_overwrites(tmp_path: Path) -> None:
    key_file = tmp_path / "nested" / "operator.key"
    created = Operator.create(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert Operator.load(key_file).address == created.address
    with pytest.raises(OperatorKeyError) as exists:
        Operator.create(key_file)
    assert exists.value.code == "operator_key_exists"
    assert Operator.load(key_file).address == created.address


def test_generate_makes_distinct_keys() -> None:
    a, b = Operator.generate(), Operator.generate()
    assert a.address != b.address
    assert a.address.startswith("0x") and len(a.address) == 42


@pytest.mark.parametrize(
    ("content", "mode", "code"),
    [
        ("0x" + "11" * 32 + "\n", 0o644, "operator_key_insecure"),
        ("", 0o600, "operator_key_invalid"),
        ("not a key\n", 0o600, "operator_key_invalid"),
        ("0x" + "00" * 32 + "\n", 0o600, "operator_key_invalid"),  # zero is not a secp256k1 key
        ("0x" + "ff" * 32 + "\n", 0o600, "operator_key_invalid"),  # beyond the curve order
        ("x" * 2000, 0o600, "operator_key_invalid"),
    ],
)
def test_a_bad_key_file_is_refused_naming_the_file(tmp_path: Path, content: str, mode: int, code: str) -> None:
    key_file = tmp_path / "operator.key"
    key_file.write_text(content)
    key_file.chmod(mode)
    with pytest.raises(OperatorKeyError) as refused:
        Operator.load(key_file)
    assert refused.value.code == code
    assert str(key_file) in str(refused.value)
    if code == "operator_key_insecure":
        assert f"chmod 600 {key_file}" in str(refused.value)


def test_a_missing_key_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(OperatorKeyError) as missing:
        Operator.load(tmp_path / "nowhere.key")
    assert missing.value.code == "operator_key_missing"
    assert "nowhere.key" in str(missing.value)


def test_signatures_are_what_the_gateway_verifies() -> None:
    # The same key and message signed by viem (domain/operator-action.ts, domain/registration.ts)
    # give these signatures (RFC 6979 signatures are deterministic).
    op = Operator("0x" + "11" * 32)
    assert op.address == "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
    action = op.sign_action(31337, "node-abc", "reinstate", now=1000)
    action["action"]["nonce"] = "0x" + "ab" * 32
    assert op._sign(31337, _types("OperatorAction"), action["action"]) == (
        "0x8e5c3d7bcc0aff985c39e80bb655c13890eb49fa8143b278848e7d04ddc585e65ccef5272b1e15f8e4a8a5a196840d0909b3375de1a8ab1d0d943245283fd8961c"
    )
    registration = op.sign_registration(31337, "node-abc", ["gitblock-tiny"], ["AB" * 32], "cpu", "0.1", now=1000)["registration"]
    assert registration["modelHashes"] == ["0x" + "ab" * 32] and registration["expiry"] == 1300
    registration["nonce"] = "0x" + "cd" * 32
    assert op._sign(31337, _types("NodeRegistration"), registration) == (
        "0xee7dce91e5ec1c325472be76461066689c8fbdb83c480a2669a7a2675500f9cf27ed3005801484f944d6b8705d14d55164298cfcbd6a5f28381da70648682e041b"
    )


def _types(name: str) -> dict[str, list[dict[str, str]]]:
    from gitblock import operator

    return operator._ACTION_TYPES if name == "OperatorAction" else operator._REGISTRATION_TYPES


def test_bad_fields_fail_before_signing() -> None:
    op = Operator.generate()
    with pytest.raises(ValueError, match="node id"):
        op.sign_action(31337, "Bad Id", "retire")
    with pytest.raises(ValueError, match="sha256"):
        op.sign_registration(31337, "node-abc", ["gitblock-tiny"], ["abc"], "cpu", "0.1")
    with pytest.raises(ValueError, match="action"):
        op.sign_action(31337, "node-abc", "delete")  # type: ignore[arg-type]
