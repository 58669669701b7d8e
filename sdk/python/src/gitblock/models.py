"""Typed views of the gateway's answers.

Each model reads only the fields it declares (others are ignored, so a gateway that adds fields
does not break old SDKs). The field names are the gateway's JSON names (``alias`` where Python
spells them differently); ``tests/test_openapi.py`` checks every one of them against the
gateway's OpenAPI document and against its real answers, so the two cannot drift apart.

GBT and ETH amounts are ``int`` base units (wei, 18 decimals), never floats; the gateway sends
them as decimal strings, and :meth:`pydantic.BaseModel.model_dump` with ``mode="json"`` writes
them back as strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

__all__ = [
    "Amount",
    "NodeState",
    "ApiModel",
    "ModelCapacity",
    "Model",
    "Node",
    "NetworkInfo",
    "Health",
    "Accrued",
    "RewardEpoch",
    "Rewards",
    "Registered",
    "ActionResult",
    "EpochClaim",
    "ClaimReport",
    "format_gbt",
]


def _amount(value: object) -> int:
    """A decimal string of base units (or an int) as an int; anything else is refused."""
    if isinstance(value, bool):
        raise ValueError("expected an amount, got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("amounts are never negative")
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        return int(value)
    raise ValueError(f"expected an amount as a decimal string of base units, got {value!r}")


Amount = Annotated[int, BeforeValidator(_amount), PlainSerializer(str, return_type=str, when_used="json")]
"""A GBT (or ETH) amount in base units: a decimal string on the wire, an ``int`` here."""

NodeState = Literal["probation", "active", "degraded", "suspended", "offline", "retired"]
"""A node's state, as its actor on the network decides it."""


class ApiModel(BaseModel):
    """Base of every answer model: immutable, reads its declared fields, ignores the rest."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ModelCapacity(ApiModel):
    """A model's live capacity on the network (the ``gitblock`` object of a model)."""

    name: str
    """Display name."""
    nodes: int
    """Nodes able to serve it now."""
    free_slots: int
    """Free parallel sequences across those nodes."""
    max_context: int
    """The largest context a serving node offers, in tokens."""
    tokens_per_second: int
    """Their recent throughput, summed."""


class Model(ApiModel):
    """A model of the catalog, in OpenAI's shape, with its capacity here."""

    id: str
    """The catalog id, used as ``model`` in requests."""
    owned_by: str
    """Always ``gitblock-network``."""
    gitblock: ModelCapacity
    """Live capacity on this network."""


class Node(ApiModel):
    """A node's public standing: state, reputation, record and hardware."""

    id: str
    """The node id."""
    operator: str
    """The operator address its rewards go to (checksummed)."""
    models: list[str]
    """Model ids it registered with."""
    state: NodeState
    """Its state on the network."""
    reputation: float
    """0 to 1: the router's confidence in it."""
    live: bool
    """Whether its heartbeat is live now."""
    gpu: str | None = None
    """The hardware it said it runs on at registration (``None`` from a gateway that does not say)."""
    requests_served: int
    """Requests it answered."""
    failures: int
    """Requests it failed."""
    verification_passes: int
    """Spot checks of its answers that passed."""
    verification_failures: int
    """Spot checks of its answers that failed."""
    uptime: float | None
    """Share of liveness checks it was live for; ``None`` before the first."""
    time_to_first_token_ms: float | None
    """Moving average of time to first token; ``None`` before its first measured request."""
    tokens_per_second: float | None
    """Moving average of its generation speed; ``None`` before its first measured request."""
    updated_at: datetime
    """When its standing last changed."""


class NetworkInfo(ApiModel):
    """What signers need: the chain id that goes into every EIP-712 domain."""

    chain_id: int = Field(alias="chainId")
    """The chain id signed messages are bound to."""
    token: str
    """The reward token's symbol."""


class Health(ApiModel):
    """The gateway's health: ``ok``, or ``degraded`` with its reasons."""

    status: Literal["ok", "degraded"]
    """``ok`` or ``degraded``."""
    reasons: list[str]
    """Why it is degraded; empty when ok."""
    live_nodes: int = Field(alias="liveNodes")
    """Nodes able to serve now."""
    models: list[str]
    """Models served now."""


class Accrued(ApiModel):
    """Rewards accrued in epochs not computed yet: the pay is not fixed."""

    amount: Amount
    """GBT base units."""
    requests: int
    """Requests they were earned by."""


class RewardEpoch(ApiModel):
    """An operator's reward for one epoch, with its Merkle proof once the root is on chain."""

    epoch: int
    """The epoch number."""
    status: Literal["settling", "claimable", "claimed", "settled"]
    """``settling``: root not confirmed on chain yet; ``claimable``/``claimed``: read on chain;
    ``settled``: on chain, claim state unknown to the gateway."""
    amount: Amount
    """What the operator is paid for the epoch (the Merkle leaf's amount)."""
    accrued: Amount
    """What it accrued, before any emission cap."""
    root: str
    """The epoch's Merkle root."""
    proof: list[str] | None = None
    """The Merkle proof of (epoch, operator, amount), once the root is on chain."""
    distributor: str | None = None
    """The rewards distributor contract to claim from."""
    chain_id: int | None = Field(default=None, alias="chainId")
    """The chain the root was posted on."""
    post_tx: str | None = Field(default=None, alias="postTx")
    """The transaction that posted the root."""


class Rewards(ApiModel):
    """An operator's GBT: accrued, settling, settled, claimable and claimed, and each epoch."""

    operator: str
    """The operator address (checksummed)."""
    accrued: Accrued
    """Earned in epochs not yet computed."""
    settling: Amount
    """Fixed in epochs whose root is not yet confirmed on chain."""
    settled: Amount
    """Paid in epochs whose root is on chain."""
    claimable: Amount
    """Settled and not yet claimed."""
    claimed: Amount
    """Settled and claimed."""
    epochs: list[RewardEpoch]
    """One entry per computed epoch the operator is paid in, oldest first."""


class Registered(ApiModel):
    """The gateway's answer to a registration."""

    node_id: str = Field(alias="nodeId")
    """The node registered."""
    operator: str
    """Its operator (checksummed)."""
    status: Literal["registered", "re-registered"]
    """``registered`` for a new node, ``re-registered`` for a known one."""


class ActionResult(ApiModel):
    """The gateway's answer to an operator action that was taken."""

    node_id: str = Field(alias="nodeId")
    """The node acted on."""
    action: Literal["reinstate", "retire"]
    """The action taken."""
    state: NodeState
    """The node's state after it."""


class EpochClaim(ApiModel):
    """One epoch claimed on chain."""

    epoch: int
    """The epoch."""
    amount: Amount
    """GBT base units moved to the operator."""
    tx_hash: str
    """The claim transaction."""


class ClaimReport(ApiModel):
    """What a claim run did: the epochs it claimed (none on a second run) and the balance after."""

    operator: str
    """The operator address that claimed and paid the gas."""
    claimed: list[EpochClaim]
    """Epochs claimed now, one transaction each."""
    already_claimed: list[int]
    """Epochs found claimed on chain before this run: skipped."""
    balance: Amount | None
    """The operator's GBT balance after the run; ``None`` when there was nothing to claim."""
    token: str | None
    """The GBT token contract; ``None`` when there was nothing to claim."""


def format_gbt(amount: int) -> str:
    """Base units as GBT, exactly: ``1500000000000000000`` → ``1.5 GBT``."""
    whole, frac = divmod(amount, 10**18)
    digits = f"{frac:018d}".rstrip("0")
    return f"{whole}{'.' + digits if digits else ''} GBT"
