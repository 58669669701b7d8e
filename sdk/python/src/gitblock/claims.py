"""Claiming rewards on chain with web3.py: every unclaimed epoch, one transaction each.

Each claim is checked before anything is sent: already claimed on chain (skipped, so a second
run claims nothing), and the gateway's Merkle proof must prove (epoch, operator, amount) against
the root the distributor holds (the chain is trusted, not the gateway). The operator pays the
gas; an address without enough ETH gets :class:`InsufficientGasError` naming it and the amount.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from typing import cast

from eth_abi.abi import encode as abi_encode
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3Exception
from web3.types import TxParams, Wei

from .errors import ChainError, ClaimFailedError, GitBlockError, InsufficientGasError, ProofMismatchError
from .models import ClaimReport, EpochClaim, RewardEpoch
from .network import Network
from .operator import Operator

__all__ = ["claim_rewards", "verify_reward_proof", "rewards_leaf", "default_rpc_url", "DISTRIBUTOR_ABI", "TOKEN_ABI"]

DISTRIBUTOR_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "claim",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "epoch", "type": "uint64"},
            {"name": "operator", "type": "address"},
            {"name": "amount", "type": "uint256"},
            {"name": "proof", "type": "bytes32[]"},
        ],
        "outputs": [],
    },
    {
        "type": "function",
        "name": "isClaimed",
        "stateMutability": "view",
        "inputs": [{"name": "epoch", "type": "uint64"}, {"name": "operator", "type": "address"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "epochRoot",
        "stateMutability": "view",
        "inputs": [{"name": "epoch", "type": "uint64"}],
        "outputs": [{"name": "", "type": "bytes32"}],
    },
    {"type": "function", "name": "token", "stateMutability": "view", "inputs": [], "outputs": [{"name": "", "type": "address"}]},
]
"""The part of ``RewardsDistributor.sol`` the SDK calls."""

TOKEN_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]
"""The part of ``GBT.sol`` the SDK calls."""

# The distributor's custom errors by selector, so a revert reads as its name.
_REVERTS = {
    "0x" + bytes(Web3.keccak(text=signature))[:4].hex(): signature.split("(")[0]
    for signature in (
        "EpochNotPosted(uint64)",
        "AlreadyClaimed(uint64,address)",
        "ZeroAmount()",
        "InvalidProof()",
        "EpochTotalExceeded(uint64,uint256,uint256)",
        "EnforcedPause()",
    )
}

_RECEIPT_TIMEOUT_SECONDS = 120


def default_rpc_url() -> str:
    """``CHAIN_RPC_URL``, else the local anvil at ``http://127.0.0.1:8545``."""
    return os.environ.get("CHAIN_RPC_URL") or "http://127.0.0.1:8545"


def keccak(data: bytes) -> bytes:
    """keccak256, as Solidity's."""
    return bytes(Web3.keccak(data))


def rewards_leaf(epoch: int, operator: str, amount: int) -> bytes:
    """The distributor's leaf: ``keccak256(keccak256(abi.encode(uint64 epoch, address operator, uint256 amount)))``."""
    return keccak(keccak(abi_encode(["uint64", "address", "uint256"], [epoch, _checksum(operator), amount])))


def _checksum(address: str) -> ChecksumAddress:
    return Web3.to_checksum_address(address)


def verify_reward_proof(root: str | bytes, epoch: int, operator: str, amount: int, proof: Sequence[str]) -> bool:
    """Whether ``proof`` proves (epoch, operator, amount) against ``root``, as OpenZeppelin's ``MerkleProof`` does (sorted pairs)."""
    node = rewards_leaf(epoch, operator, amount)
    for sibling_hex in proof:
        sibling = bytes.fromhex(sibling_hex.removeprefix("0x"))
        if len(sibling) != 32:
            return False
        node = keccak(min(node, sibling) + max(node, sibling))
    expected = root if isinstance(root, bytes) else bytes.fromhex(root.removeprefix("0x"))
    return node == expected


def claim_rewards(operator: Operator, network: Network, rpc_url: str | None = None) -> ClaimReport:
    """Claims every settled epoch ``operator`` has not claimed yet, one transaction each.

    Idempotent: epochs already claimed on chain are skipped, so a second run claims nothing.

    Raises:
        InsufficientGasError: the operator's address cannot pay for the gas; nothing more is sent.
        ChainError: ``chain_unreachable`` when the RPC endpoint does not answer.
        ClaimFailedError: some epochs could not be claimed (``failures`` says why, per epoch),
            after trying all of them; its ``report`` lists those that were.
        ApiError: the gateway refused to list the rewards.
    """
    rewards = network.rewards(operator)
    # 'settled': the gateway could not read the claim state; the chain decides below.
    candidates = [e for e in rewards.epochs if e.status in ("claimable", "settled") and e.proof is not None and e.distributor is not None]
    report = ClaimReport(operator=operator.address, claimed=[], already_claimed=[], balance=None, token=None)
    if not candidates:
        return report
    url = rpc_url or default_rpc_url()
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 15}))
    try:
        chain_id = int(w3.eth.chain_id)
    except (Web3Exception, OSError) as err:
        raise ChainError("chain_unreachable", f"cannot reach the chain at {url}: {_short(err)}") from err

    claimed: list[EpochClaim] = []
    already: list[int] = []
    failures: dict[int, GitBlockError] = {}
    for entry in candidates:
        try:
            outcome = _claim_one(w3, chain_id, operator, entry, remaining=len(candidates) - len(claimed) - len(already) - len(failures))
        except InsufficientGasError:
            raise
        except GitBlockError as err:
            failures[entry.epoch] = err
            continue
        except (Web3Exception, OSError) as err:
            failures[entry.epoch] = ChainError("chain_error", _short(err))
            continue
        if outcome is None:
            already.append(entry.epoch)
        else:
            claimed.append(outcome)

    balance: int | None = None
    token: str | None = None
    if claimed:
        distributor = w3.eth.contract(address=_checksum(str(candidates[0].distributor)), abi=DISTRIBUTOR_ABI)
        token = str(distributor.functions.token().call())
        balance = int(w3.eth.contract(address=_checksum(token), abi=TOKEN_ABI).functions.balanceOf(_checksum(operator.address)).call())
    report = ClaimReport(operator=operator.address, claimed=claimed, already_claimed=already, balance=balance, token=token)
    if failures:
        raise ClaimFailedError(failures, report)
    return report


def _claim_one(w3: Web3, chain_id: int, operator: Operator, entry: RewardEpoch, remaining: int) -> EpochClaim | None:
    """Claims one epoch; None when it was already claimed."""
    if entry.chain_id is not None and entry.chain_id != chain_id:
        raise ChainError("chain_mismatch", f"it was posted on chain {entry.chain_id}, but the RPC endpoint is chain {chain_id}")
    proof = list(entry.proof or [])
    me = _checksum(operator.address)
    distributor = w3.eth.contract(address=_checksum(str(entry.distributor)), abi=DISTRIBUTOR_ABI)
    if distributor.functions.isClaimed(entry.epoch, me).call():
        return None
    root: bytes = distributor.functions.epochRoot(entry.epoch).call()
    # Trust the chain, not the gateway: a proof that does not verify is never sent.
    if not verify_reward_proof(root, entry.epoch, operator.address, entry.amount, proof):
        raise ProofMismatchError(entry.epoch, "0x" + root.hex())

    call = distributor.functions.claim(entry.epoch, me, entry.amount, proof)
    try:
        gas = int(call.estimate_gas({"from": me}))
    except ContractLogicError as err:
        name = _revert_name(err)
        if name == "AlreadyClaimed":
            return None
        raise GitBlockError("claim_reverted", f"the distributor refuses the claim: {name or _short(err)}") from err
    priority = int(w3.eth.max_priority_fee)
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    max_fee = 2 * base + priority
    need = gas * max_fee
    balance = int(w3.eth.get_balance(me))
    if balance < need:
        # What every claim still to send needs, so one top-up is enough.
        raise InsufficientGasError(operator.address, balance, need * remaining, chain_id)
    params: TxParams = {
        "from": me,
        "chainId": chain_id,
        "nonce": w3.eth.get_transaction_count(me, "pending"),
        "gas": gas + gas // 5,
        "maxFeePerGas": Wei(max_fee),
        "maxPriorityFeePerGas": Wei(priority),
    }
    tx = call.build_transaction(params)
    signed = operator.account.sign_transaction(cast(dict[str, Any], tx))
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=_RECEIPT_TIMEOUT_SECONDS)
    hex_hash = "0x" + bytes(tx_hash).hex().removeprefix("0x")
    if receipt["status"] != 1:
        raise GitBlockError("claim_reverted", f"transaction {hex_hash} reverted")
    return EpochClaim(epoch=entry.epoch, amount=entry.amount, tx_hash=hex_hash)


def _revert_name(err: ContractLogicError) -> str | None:
    data = err.data if isinstance(err, ContractCustomError) else getattr(err, "data", None)
    if isinstance(data, str) and len(data) >= 10:
        return _REVERTS.get(data[:10].lower())
    return None


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
