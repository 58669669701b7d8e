"""The ``gitblock`` command: the SDK for a terminal, tables for people and ``--json`` for machines.

    gitblock nodes [--all] [--model ID]     this operator's nodes (every node with --all)
    gitblock node ID                        one node's standing
    gitblock rewards                        this operator's GBT, per epoch
    gitblock claim                          claims every unclaimed epoch on chain
    gitblock reinstate ID | retire ID       signed operator actions

Common options: ``--gateway URL`` (else ``GITBLOCK_GATEWAY_URL``, else http://127.0.0.1:8080),
``--key-file PATH`` (else the node's ``~/.gitblock/operator.key``), ``--rpc URL`` (else
``CHAIN_RPC_URL``, else http://127.0.0.1:8545), ``--json``. Exit codes: 0 done, 1 refused or
failed (the message says why, with the API's error code), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from .claims import claim_rewards, default_rpc_url
from .errors import ApiError, ClaimFailedError, GitBlockError
from .models import Node, Rewards, format_gbt
from .network import Network, default_gateway_url
from .operator import Operator

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code (the console script exits with it)."""
    args = _parser().parse_args(argv)
    command: Callable[[argparse.Namespace, Network], Any] = args.run
    try:
        with Network(args.gateway or default_gateway_url()) as network:
            result = command(args, network)
    except ClaimFailedError as err:
        _emit(args, err.report, _format_claims)
        return _fail(args, err)
    except (GitBlockError, ValueError) as err:
        return _fail(args, err)
    _emit(args, result, args.format)
    return 0


def _common(suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name; after it, only those given count."""
    common = argparse.ArgumentParser(add_help=False)
    default: Any = argparse.SUPPRESS if suppress else None
    common.add_argument("--gateway", default=default, help="the gateway's URL (default: GITBLOCK_GATEWAY_URL, else http://127.0.0.1:8080)")
    common.add_argument("--key-file", default=default, help="the operator key (default: the node's, ~/.gitblock/operator.key)")
    common.add_argument("--rpc", default=default, help="the chain's JSON-RPC URL, for claims (default: CHAIN_RPC_URL, else http://127.0.0.1:8545)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False, help="print JSON for machines instead of a table")
    return common


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gitblock", description="GitBlock for node operators.", parents=[_common(False)])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # A subcommand's defaults would overwrite what was given before its name: its own are suppressed.
    common = _common(True)

    nodes = commands.add_parser("nodes", parents=[common], help="this operator's nodes (every node with --all)")
    nodes.add_argument("--all", action="store_true", help="every node of the network, not only this operator's")
    nodes.add_argument("--model", help="only nodes serving this model")
    nodes.set_defaults(run=_nodes, format=_format_nodes)

    node = commands.add_parser("node", parents=[common], help="one node's standing")
    node.add_argument("node_id", metavar="ID")
    node.set_defaults(run=lambda a, n: n.node(a.node_id), format=lambda n: _format_nodes([n], detail=True))

    rewards = commands.add_parser("rewards", parents=[common], help="this operator's GBT, per epoch")
    rewards.set_defaults(run=lambda a, n: n.rewards(_operator(a)), format=_format_rewards)

    claim = commands.add_parser("claim", parents=[common], help="claim every unclaimed epoch on chain")
    claim.set_defaults(run=lambda a, n: claim_rewards(_operator(a), n, a.rpc or default_rpc_url()), format=_format_claims)

    for action in ("reinstate", "retire"):
        sub = commands.add_parser(action, parents=[common], help=f"{action} a node (signed with the operator key)")
        sub.add_argument("node_id", metavar="ID")
        sub.set_defaults(run=_action(action), format=lambda r: f"node {r.node_id}: {r.action} done; it is now {r.state}")
    return parser


def _operator(args: argparse.Namespace) -> Operator:
    return Operator.load(args.key_file)


def _nodes(args: argparse.Namespace, network: Network) -> list[Node]:
    operator = None if args.all else _operator(args).address
    return network.nodes(model=args.model, operator=operator)


def _action(action: str) -> Callable[[argparse.Namespace, Network], Any]:
    def run(args: argparse.Namespace, network: Network) -> Any:
        act = network.reinstate if action == "reinstate" else network.retire
        return act(_operator(args), args.node_id)

    return run


def _emit(args: argparse.Namespace, result: Any, format: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(_jsonable(result), indent=2))
    else:
        print(format(result))


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _fail(args: argparse.Namespace, err: Exception) -> int:
    code = err.code if isinstance(err, GitBlockError) else "invalid_argument"
    message = err.message if isinstance(err, GitBlockError) else str(err)
    if args.json:
        error: dict[str, Any] = {"code": code, "message": message}
        if isinstance(err, ApiError):
            error.update(status=err.status, param=err.param, retry_after=err.retry_after)
        print(json.dumps({"error": error}, indent=2), file=sys.stderr)
    else:
        print(f"gitblock: {message} ({code})", file=sys.stderr)
    return 1


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def _format_nodes(nodes: Sequence[Node], detail: bool = False) -> str:
    if not nodes:
        return "No nodes."
    if detail:
        n = nodes[0]
        pairs = [
            ("node", n.id),
            ("operator", n.operator),
            ("state", n.state),
            ("live", "yes" if n.live else "no"),
            ("reputation", f"{n.reputation:.4f}"),
            ("models", ", ".join(n.models)),
            ("hardware", n.gpu or "-"),
            ("served", f"{n.requests_served} requests, {n.failures} failed"),
            ("checks", f"{n.verification_passes} passed, {n.verification_failures} failed"),
            ("uptime", "-" if n.uptime is None else f"{n.uptime:.1%}"),
            ("first token", "-" if n.time_to_first_token_ms is None else f"{n.time_to_first_token_ms:.0f} ms"),
            ("speed", "-" if n.tokens_per_second is None else f"{n.tokens_per_second:.1f} tokens/s"),
            ("updated", n.updated_at.isoformat()),
        ]
        return "\n".join(f"{k:<12} {v}" for k, v in pairs)
    rows = [
        [n.id, n.state, "yes" if n.live else "no", f"{n.reputation:.4f}", str(n.requests_served), n.gpu or "-", ", ".join(n.models)]
        for n in nodes
    ]
    return _table(["NODE", "STATE", "LIVE", "REPUTATION", "SERVED", "HARDWARE", "MODELS"], rows)


def _format_rewards(r: Rewards) -> str:
    claimable = [e.epoch for e in r.epochs if e.status == "claimable"]
    lines = [
        f"operator   {r.operator}",
        f"accrued    {format_gbt(r.accrued.amount)} ({r.accrued.requests} requests, not yet settled)",
        f"settling   {format_gbt(r.settling)}",
        f"settled    {format_gbt(r.settled)}",
        f"claimable  {format_gbt(r.claimable)}" + (f" (epochs {', '.join(map(str, claimable))}): run `gitblock claim`" if claimable else ""),
        f"claimed    {format_gbt(r.claimed)}",
    ]
    if r.epochs:
        rows = [[str(e.epoch), e.status, format_gbt(e.amount), format_gbt(e.accrued)] for e in r.epochs]
        lines += ["", _table(["EPOCH", "STATUS", "PAID", "ACCRUED"], rows)]
    return "\n".join(lines)


def _format_claims(report: Any) -> str:
    lines = [f"epoch {c.epoch}: claimed {format_gbt(c.amount)} in tx {c.tx_hash}" for c in report.claimed]
    if not report.claimed:
        lines.append("Nothing to claim.")
    else:
        lines.append(f"balance {format_gbt(report.balance or 0)} at {report.operator} (GBT token {report.token})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
