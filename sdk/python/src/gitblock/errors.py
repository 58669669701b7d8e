"""Every error the SDK raises: one base class with a stable ``code``, so callers branch on codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import ClaimReport

__all__ = [
    "GitBlockError",
    "ApiError",
    "GatewayUnreachableError",
    "UnexpectedResponseError",
    "OperatorKeyError",
    "ChainError",
    "ProofMismatchError",
    "InsufficientGasError",
    "ClaimFailedError",
]


class GitBlockError(Exception):
    """Base of every SDK error.

    Attributes:
        code: A stable, machine-readable code: the gateway's own error code for API errors
            (``not_found``, ``forbidden``, ``signature_rejected``, ...), else one of the SDK's.
    """

    code: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0]) if self.args else ""


class ApiError(GitBlockError):
    """The gateway refused a request; ``code`` is the API's error code (``error.code``).

    Attributes:
        status: The HTTP status the gateway answered with.
        param: The parameter the error names, if any.
        retry_after: Seconds the gateway asks to wait before retrying (``Retry-After``), if given.
    """

    status: int
    param: str | None
    retry_after: int | None

    def __init__(self, code: str, message: str, status: int, param: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(code, message)
        self.status = status
        self.param = param
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status}, {self.code})"


class GatewayUnreachableError(GitBlockError):
    """The gateway did not answer at all: down, wrong address, or the connection broke."""

    url: str

    def __init__(self, url: str, cause: str) -> None:
        super().__init__("gateway_unreachable", f"cannot reach the GitBlock gateway at {url}: {cause}")
        self.url = url


class UnexpectedResponseError(GitBlockError):
    """The gateway answered with something that is not what its API describes."""

    def __init__(self, message: str) -> None:
        super().__init__("unexpected_response", message)


class OperatorKeyError(GitBlockError):
    """An operator key file that cannot be used: missing, unreadable, insecure or not a key.

    ``code`` is ``operator_key_missing``, ``operator_key_unreadable``, ``operator_key_insecure``
    or ``operator_key_invalid``.
    """


class ChainError(GitBlockError):
    """The chain could not be reached or answered unexpectedly (``code`` ``chain_unreachable`` or ``chain_mismatch``)."""


class ProofMismatchError(GitBlockError):
    """The gateway's Merkle proof does not prove the claim against the root on chain; nothing was sent."""

    epoch: int

    def __init__(self, epoch: int, root: str) -> None:
        super().__init__("proof_mismatch", f"epoch {epoch}: the gateway's proof does not match the root on chain ({root}); not claimed")
        self.epoch = epoch


class InsufficientGasError(GitBlockError):
    """The operator's address holds too little ETH to pay for a claim's gas.

    Attributes:
        address: The address that pays.
        balance_wei: What it holds.
        needed_wei: What the claim needs, about.
    """

    address: str
    balance_wei: int
    needed_wei: int

    def __init__(self, address: str, balance_wei: int, needed_wei: int, chain_id: int) -> None:
        short = needed_wei - balance_wei if needed_wei > balance_wei else needed_wei
        super().__init__(
            "insufficient_gas",
            f"{address} holds {_eth(balance_wei)} ETH on chain {chain_id}, and claiming needs about {_eth(needed_wei)} ETH for gas: "
            f"send {address} at least {_eth(short)} ETH",
        )
        self.address = address
        self.balance_wei = balance_wei
        self.needed_wei = needed_wei


class ClaimFailedError(GitBlockError):
    """Some epochs could not be claimed; the others were.

    Attributes:
        failures: Epoch → why it could not be claimed.
        report: What was claimed (a :class:`gitblock.models.ClaimReport`).
    """

    failures: dict[int, GitBlockError]
    report: ClaimReport

    def __init__(self, failures: dict[int, GitBlockError], report: ClaimReport) -> None:
        listed = "; ".join(f"epoch {epoch}: {err.message}" for epoch, err in sorted(failures.items()))
        super().__init__("claim_failed", f"could not claim {listed}")
        self.failures = failures
        self.report = report


def _eth(wei: int) -> str:
    """Wei as ETH, exactly (no floating point)."""
    whole, frac = divmod(wei, 10**18)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
