"""Rewards and claims on the real network: a served request accrues, its epoch settles on anvil,
the operator claims it with the SDK (and the command), and a second claim moves nothing.

Last in the run (by name): the request served at the start (``earned``) has settled by then.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from web3 import Web3

from gitblock import ClaimReport, InsufficientGasError, Network, Rewards, claim_rewards, verify_reward_proof
from gitblock.claims import DISTRIBUTOR_ABI, TOKEN_ABI

from .conftest import LocalNetwork, gitblock, gitblock_script

SETTLE_TIMEOUT_SECONDS = 300


def _claimable(network: LocalNetwork, net: Network) -> Rewards:
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while True:
        rewards = net.rewards(network.operator)
        if rewards.claimable > 0:
            return rewards
        assert time.monotonic() < deadline, f"nothing claimable {SETTLE_TIMEOUT_SECONDS} s after serving: {rewards}\n{network.log_tail()}"
        time.sleep(2)


def _gbt_balance(w3: Web3, distributor: str, address: str) -> int:
    token = w3.eth.contract(address=Web3.to_checksum_address(distributor), abi=DISTRIBUTOR_ABI).functions.token().call()
    return int(w3.eth.contract(address=token, abi=TOKEN_ABI).functions.balanceOf(Web3.to_checksum_address(address)).call())


def test_accrue_settle_claim_once_and_claim_nothing_twice(network: LocalNetwork, earned: dict[str, Any]) -> None:
    op = network.operator
    w3 = Web3(Web3.HTTPProvider(network.rpc_url))
    with Network(network.gateway_url) as net:
        assert earned["choices"][0]["message"]["content"] is not None
        rewards = _claimable(network, net)
        due = [e for e in rewards.epochs if e.status == "claimable"]
        assert due and all(e.proof is not None and e.distributor for e in due)
        distributor = str(due[0].distributor)
        before = _gbt_balance(w3, distributor, op.address)

        # The proofs prove the claims against the roots on chain, and nothing else.
        contract = w3.eth.contract(address=Web3.to_checksum_address(distributor), abi=DISTRIBUTOR_ABI)
        for e in due:
            root = contract.functions.epochRoot(e.epoch).call()
            assert verify_reward_proof(root, e.epoch, op.address, e.amount, e.proof or [])
            assert not verify_reward_proof(root, e.epoch, op.address, e.amount + 1, e.proof or [])
            assert not verify_reward_proof(root, e.epoch + 1, op.address, e.amount, e.proof or [])

        # No ETH for gas: a clear refusal naming the address and the amount, and nothing sent.
        network.rpc("anvil_setBalance", op.address, "0x0")
        with pytest.raises(InsufficientGasError) as broke:
            claim_rewards(op, net, network.rpc_url)
        assert broke.value.code == "insufficient_gas"
        assert broke.value.address == op.address and broke.value.balance_wei == 0 and broke.value.needed_wei > 0
        assert op.address in str(broke.value) and "ETH" in str(broke.value)
        assert _gbt_balance(w3, distributor, op.address) == before

        network.rpc("anvil_setBalance", op.address, hex(10**19))
        # The first claim moves the GBT, one transaction per epoch (the command, over the SDK).
        first = gitblock_script(network, "claim")
        assert first.returncode == 0, first.stderr
        for e in due:
            assert f"epoch {e.epoch}: claimed " in first.stdout
        assert f"at {op.address} (GBT token 0x" in first.stdout
        moved = _gbt_balance(w3, distributor, op.address) - before
        assert moved >= sum(e.amount for e in due) > 0

        after = net.rewards(op)
        assert after.claimable == 0 and after.claimed == moved
        assert {e.epoch for e in due} <= {e.epoch for e in after.epochs if e.status == "claimed"}

        # A second claim finds everything claimed on chain: no transaction, no GBT.
        again = claim_rewards(op, net, network.rpc_url)
        assert again == ClaimReport(operator=op.address, claimed=[], already_claimed=[], balance=None, token=None)
        third = gitblock(network, "claim", "--json")
        assert third.returncode == 0, third.stderr
        assert json.loads(third.stdout)["claimed"] == []
        assert gitblock(network, "claim").stdout.strip() == "Nothing to claim."
        assert _gbt_balance(w3, distributor, op.address) - before == moved

        shown = gitblock(network, "rewards")
        assert shown.returncode == 0, shown.stderr
        assert f"operator   {op.address}" in shown.stdout and "claimed" in shown.stdout
        as_json = json.loads(gitblock(network, "rewards", "--json").stdout)
        assert as_json["operator"] == op.address and as_json["claimed"] == str(moved)
