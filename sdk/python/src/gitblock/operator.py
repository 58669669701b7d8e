"""The operator: the Ethereum key a node's rewards go to, and the signed messages only it can make.

The key file is the node's own (``~/.gitblock/operator.key``: one line, ``0x`` and 64 hex digits,
mode 0600), read under the same rules as ``gitblock-node``. Signed messages are EIP-712 typed data
exactly as the gateway verifies them (``domain/registration.ts``, ``domain/operator-action.ts``):
domain ``{name: "GitBlock", version: "1", chainId}``, no verifying contract.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from .errors import OperatorKeyError

__all__ = [
    "Operator",
    "OperatorAction",
    "default_key_file",
    "REGISTRATION_LIFETIME_SECONDS",
]

OperatorAction = Literal["reinstate", "retire"]
"""What an operator may do to its node."""

REGISTRATION_LIFETIME_SECONDS = 5 * 60
"""How long a signed message lives: the gateway refuses more than 10 minutes, so 5 leaves room for clock skew."""

_KEY_PATTERN = re.compile(r"^0x[0-9a-fA-F]{64}$")
_NODE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
_HASH_PATTERN = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")

_DOMAIN_NAME = "GitBlock"
_DOMAIN_VERSION = "1"
_REGISTRATION_TYPES: dict[str, list[dict[str, str]]] = {
    "NodeRegistration": [
        {"name": "nodeId", "type": "string"},
        {"name": "operator", "type": "address"},
        {"name": "models", "type": "string[]"},
        {"name": "modelHashes", "type": "bytes32[]"},
        {"name": "gpu", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "expiry", "type": "uint64"},
        {"name": "nonce", "type": "bytes32"},
    ]
}
_ACTION_TYPES: dict[str, list[dict[str, str]]] = {
    "OperatorAction": [
        {"name": "nodeId", "type": "string"},
        {"name": "action", "type": "string"},
        {"name": "expiry", "type": "uint64"},
        {"name": "nonce", "type": "bytes32"},
    ]
}


def default_key_file() -> Path:
    """Where the node keeps the operator key: ``GITBLOCK_NODE_KEY_FILE``, else ``$GITBLOCK_NODE_HOME/operator.key``, else ``~/.gitblock/operator.key``."""
    explicit = os.environ.get("GITBLOCK_NODE_KEY_FILE")
    if explicit:
        return Path(explicit)
    home = os.environ.get("GITBLOCK_NODE_HOME")
    return Path(home) / "operator.key" if home else Path.home() / ".gitblock" / "operator.key"


class Operator:
    """An operator key: its address, and signatures the gateway accepts from it.

    Example:
        >>> op = Operator.load()                  # ~/.gitblock/operator.key, the node's own
        >>> op.address
        '0x...'
    """

    _account: LocalAccount

    def __init__(self, private_key: str) -> None:
        """Wraps a private key given as ``0x`` and 64 hex digits.

        Raises:
            OperatorKeyError: ``operator_key_invalid`` when it is not a secp256k1 private key.
        """
        if not _KEY_PATTERN.match(private_key):
            raise OperatorKeyError("operator_key_invalid", "an operator key is 0x followed by 64 hex digits")
        try:
            self._account = Account.from_key(private_key)
        except (ValueError, TypeError) as err:
            raise OperatorKeyError("operator_key_invalid", "the key is not a valid secp256k1 private key") from err

    @property
    def address(self) -> str:
        """The operator's address, checksummed (EIP-55): where its rewards go."""
        return str(self._account.address)

    @property
    def account(self) -> LocalAccount:
        """The eth-account account, for signing transactions."""
        return self._account

    def __repr__(self) -> str:
        return f"Operator({self.address})"

    @classmethod
    def generate(cls) -> Operator:
        """A new random key, held in memory only (save it with :meth:`create` to keep it)."""
        return cls("0x" + secrets.token_hex(32))

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Operator:
        """Loads the key file the node uses (default :func:`default_key_file`); never creates one.

        A file readable or writable by group or others is refused, as the node refuses it:
        whoever reads it can take the operator's rewards.

        Raises:
            OperatorKeyError: ``operator_key_missing``, ``operator_key_unreadable``,
                ``operator_key_insecure`` or ``operator_key_invalid``, naming the file.
        """
        file = Path(path) if path is not None else default_key_file()
        try:
            fd = os.open(file, os.O_RDONLY)
        except FileNotFoundError:
            raise OperatorKeyError(
                "operator_key_missing", f"no operator key at {file}: start a node first (gitblock-node start), or create one with Operator.create"
            ) from None
        except OSError as err:
            raise OperatorKeyError("operator_key_unreadable", f"cannot read operator key {file}: {err.strerror}") from err
        with os.fdopen(fd, "rb") as handle:
            # fstat the opened file, not the path, so the checked file is the one read.
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise OperatorKeyError("operator_key_unreadable", f"operator key {file} is not a regular file")
            if sys.platform != "win32" and info.st_mode & 0o077:
                raise OperatorKeyError(
                    "operator_key_insecure",
                    f"operator key {file} is accessible to group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                    f"anyone who reads it can take your rewards. Fix it with: chmod 600 {file}",
                )
            if info.st_size > 1024:
                raise _invalid(file, f"it is {info.st_size} bytes")
            text = handle.read().decode("utf-8", errors="replace").strip()
        if not _KEY_PATTERN.match(text):
            raise _invalid(file, "it is empty" if not text else "its content is not 0x followed by 64 hex digits")
        try:
            return cls(text)
        except OperatorKeyError:
            raise _invalid(file, "it is not a valid secp256k1 private key") from None

    @classmethod
    def create(cls, path: str | os.PathLike[str] | None = None) -> Operator:
        """Creates a new key in ``path`` (mode 0600 from the first byte), refusing to overwrite one.

        Raises:
            OperatorKeyError: ``operator_key_exists`` when the file is already there.
        """
        file = Path(path) if path is not None else default_key_file()
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        operator = cls.generate()
        key = "0x" + bytes(operator._account.key).hex()
        try:
            # O_EXCL: never clobbers a key (or follows a planted symlink); 0600 from creation.
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise OperatorKeyError("operator_key_exists", f"{file} already holds a key; load it with Operator.load") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return operator

    def sign_registration(
        self,
        chain_id: int,
        node_id: str,
        models: Sequence[str],
        model_hashes: Sequence[str],
        gpu: str,
        version: str,
        *,
        now: int | None = None,
        lifetime_seconds: int = REGISTRATION_LIFETIME_SECONDS,
    ) -> dict[str, Any]:
        """The body of ``POST /v1/nodes/register``: a ``NodeRegistration`` signed by this key.

        Model hashes (sha256 of each GGUF, one per model) may be bare or ``0x``-prefixed, in any
        case; they are sent as the gateway wants them, ``0x`` + lowercase. ``now`` is unix seconds.
        """
        _check_node_id(node_id)
        hashes = []
        for h in model_hashes:
            if not _HASH_PATTERN.match(h):
                raise ValueError(f"model hash {h!r} is not a sha256 (64 hex digits)")
            hashes.append("0x" + h.removeprefix("0x").lower())
        registration: dict[str, Any] = {
            "nodeId": node_id,
            "operator": self.address,
            "models": list(models),
            "modelHashes": hashes,
            "gpu": gpu,
            "version": version,
            **_freshness(now, lifetime_seconds),
        }
        return {"registration": registration, "signature": self._sign(chain_id, _REGISTRATION_TYPES, registration)}

    def sign_action(
        self,
        chain_id: int,
        node_id: str,
        action: OperatorAction,
        *,
        now: int | None = None,
        lifetime_seconds: int = REGISTRATION_LIFETIME_SECONDS,
    ) -> dict[str, Any]:
        """The body of ``POST /v1/nodes/<id>/reinstate`` or ``/retire``: an ``OperatorAction`` signed by this key."""
        _check_node_id(node_id)
        if action not in ("reinstate", "retire"):
            raise ValueError(f"unknown operator action {action!r}: reinstate or retire")
        fields: dict[str, Any] = {"nodeId": node_id, "action": action, **_freshness(now, lifetime_seconds)}
        return {"action": fields, "signature": self._sign(chain_id, _ACTION_TYPES, fields)}

    def _sign(self, chain_id: int, types: dict[str, list[dict[str, str]]], message: dict[str, Any]) -> str:
        signable = encode_typed_data(
            domain_data={"name": _DOMAIN_NAME, "version": _DOMAIN_VERSION, "chainId": chain_id},
            message_types=types,
            message_data=message,
        )
        signed = self._account.sign_message(signable)
        return "0x" + bytes(signed.signature).hex().removeprefix("0x")


def _freshness(now: int | None, lifetime_seconds: int) -> dict[str, Any]:
    """A fresh expiry and a random nonce (0x + 64 lowercase hex: one value, one spelling)."""
    issued = int(time.time()) if now is None else now
    return {"expiry": issued + lifetime_seconds, "nonce": "0x" + secrets.token_hex(32)}


def _check_node_id(node_id: str) -> None:
    if not _NODE_ID_PATTERN.match(node_id):
        raise ValueError(f"invalid node id {node_id[:80]!r}: 3-63 lowercase letters, digits and dashes")


def _invalid(file: Path, why: str) -> OperatorKeyError:
    return OperatorKeyError(
        "operator_key_invalid",
        f"operator key {file} is not a private key ({why}); expected one line: 0x followed by 64 hex digits",
    )
