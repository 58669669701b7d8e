"""GitBlock for node operators: see your nodes, register, reinstate or retire them, watch and claim rewards.

Quick start::

    from gitblock import Network, Operator, claim_rewards

    op = Operator.load()                                  # ~/.gitblock/operator.key, the node's own key
    net = Network("http://127.0.0.1:8080")
    print([(n.id, n.state) for n in net.nodes(operator=op.address)])
    print(claim_rewards(op, net, "http://127.0.0.1:8545").claimed)
"""

from .claims import claim_rewards, default_rpc_url, rewards_leaf, verify_reward_proof
from .errors import (
    ApiError,
    ChainError,
    ClaimFailedError,
    GatewayUnreachableError,
    GitBlockError,
    InsufficientGasError,
    OperatorKeyError,
    ProofMismatchError,
    UnexpectedResponseError,
)
from .models import (
    Accrued,
    ActionResult,
    ClaimReport,
    EpochClaim,
    Health,
    Model,
    ModelCapacity,
    NetworkInfo,
    Node,
    Registered,
    RewardEpoch,
    Rewards,
    format_gbt,
)
from .network import AsyncNetwork, Network, default_gateway_url
from .operator import Operator, default_key_file

__version__ = "0.1.0"
"""The SDK's version."""

__all__ = [
    "Accrued",
    "ActionResult",
    "ApiError",
    "AsyncNetwork",
    "ChainError",
    "ClaimFailedError",
    "ClaimReport",
    "EpochClaim",
    "GatewayUnreachableError",
    "GitBlockError",
    "Health",
    "InsufficientGasError",
    "Model",
    "ModelCapacity",
    "Network",
    "NetworkInfo",
    "Node",
    "Operator",
    "OperatorKeyError",
    "ProofMismatchError",
    "Registered",
    "RewardEpoch",
    "Rewards",
    "UnexpectedResponseError",
    "claim_rewards",
    "default_gateway_url",
    "default_key_file",
    "default_rpc_url",
    "format_gbt",
    "rewards_leaf",
    "verify_reward_proof",
]
