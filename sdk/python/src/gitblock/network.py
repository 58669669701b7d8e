"""The gateway's HTTP API, typed: :class:`Network` (sync) and :class:`AsyncNetwork` (asyncio).

Both build the same calls (:class:`_Call`) and read answers the same way (:func:`_decode`), so
they cannot disagree; only the transport differs. Every refusal raises :class:`ApiError` with the
API's error code, a gateway that does not answer :class:`GatewayUnreachableError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import ApiError, GatewayUnreachableError, UnexpectedResponseError
from .models import ActionResult, Health, Model, NetworkInfo, Node, Registered, Rewards
from .operator import Operator, OperatorAction

__all__ = ["Network", "AsyncNetwork", "default_gateway_url", "DEFAULT_TIMEOUT_SECONDS"]

DEFAULT_TIMEOUT_SECONDS = 15.0
"""How long one call may take, connecting and reading included."""

T = TypeVar("T")


def default_gateway_url() -> str:
    """``GITBLOCK_GATEWAY_URL``, else ``http://127.0.0.1:8080`` (where ``npm start`` puts it by default)."""
    return os.environ.get("GITBLOCK_GATEWAY_URL") or "http://127.0.0.1:8080"


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One API call: what to send, and how to read a successful answer."""

    method: str
    path: str
    read: Callable[[Any], T]
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    # /health answers 503 with its own body when a dependency is down: that is an answer, not an error.
    ok_statuses: tuple[int, ...] = ()


def _model(cls: type[BaseModel]) -> Callable[[Any], Any]:
    return cls.model_validate


def _list_of(cls: type[T]) -> Callable[[Any], list[T]]:
    adapter = TypeAdapter(list[cls])  # type: ignore[valid-type]

    def read(body: Any) -> list[T]:
        if not isinstance(body, dict) or "data" not in body:
            raise UnexpectedResponseError("expected a list object with `data`")
        result: list[T] = adapter.validate_python(body["data"])
        return result

    return read


def _node_path(node_id: str, suffix: str = "") -> str:
    return f"/v1/nodes/{quote(node_id, safe='')}{suffix}"


def _decode(call: _Call[T], url: str, response: httpx.Response) -> T:
    """The answer of a call as its type, or the API's refusal as :class:`ApiError`."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.is_success or response.status_code in call.ok_statuses:
        if body is None:
            raise UnexpectedResponseError(f"{call.method} {url}{call.path} answered {response.status_code} without a JSON body")
        try:
            result: T = call.read(body)
            return result
        except (ValidationError, UnexpectedResponseError) as err:
            raise UnexpectedResponseError(f"{call.method} {url}{call.path}: the gateway's answer does not match its API: {err}") from err
    error = body.get("error") if isinstance(body, dict) else None
    retry = response.headers.get("retry-after")
    retry_after = int(retry) if retry is not None and retry.isdigit() else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("code")
        param = error.get("param")
        raise ApiError(
            code if isinstance(code, str) else f"http_{response.status_code}",
            error["message"],
            response.status_code,
            param if isinstance(param, str) else None,
            retry_after,
        )
    text = response.text[:200]
    raise ApiError(f"http_{response.status_code}", f"{call.method} {url}{call.path} answered {response.status_code}: {text}", response.status_code, None, retry_after)


def _unreachable(url: str, err: httpx.TransportError) -> GatewayUnreachableError:
    cause = str(err) or type(err).__name__
    return GatewayUnreachableError(url, cause)


class _Api:
    """The calls, shared by the sync and async clients."""

    url: str

    def __init__(self, url: str | None) -> None:
        base = (url or default_gateway_url()).rstrip("/")
        parsed = httpx.URL(base)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"expected the gateway's http(s) URL, got {base!r}")
        self.url = base

    @staticmethod
    def _models() -> _Call[list[Model]]:
        return _Call("GET", "/v1/models", _list_of(Model))

    @staticmethod
    def _nodes(model: str | None, operator: str | None) -> _Call[list[Node]]:
        params = {k: v for k, v in (("model", model), ("operator", operator)) if v is not None}
        return _Call("GET", "/v1/nodes", _list_of(Node), params=params)

    @staticmethod
    def _node(node_id: str) -> _Call[Node]:
        return _Call("GET", _node_path(node_id), _model(Node))

    @staticmethod
    def _health() -> _Call[Health]:
        return _Call("GET", "/health", _model(Health), ok_statuses=(503,))

    @staticmethod
    def _info() -> _Call[NetworkInfo]:
        return _Call("GET", "/v1/network", _model(NetworkInfo))

    @staticmethod
    def _rewards(operator: str) -> _Call[Rewards]:
        return _Call("GET", f"/v1/rewards/{quote(operator, safe='')}", _model(Rewards))

    @staticmethod
    def _openapi() -> _Call[dict[str, Any]]:
        def read(body: Any) -> dict[str, Any]:
            if not isinstance(body, dict) or "paths" not in body:
                raise UnexpectedResponseError("expected an OpenAPI document with `paths`")
            return body

        return _Call("GET", "/openapi.json", read)

    @staticmethod
    def _register(body: dict[str, Any]) -> _Call[Registered]:
        return _Call("POST", "/v1/nodes/register", _model(Registered), body=body)

    @staticmethod
    def _action(node_id: str, action: OperatorAction, body: dict[str, Any]) -> _Call[ActionResult]:
        return _Call("POST", _node_path(node_id, f"/{action}"), _model(ActionResult), body=body)


class Network(_Api):
    """The GitBlock network through its gateway, synchronously.

    Example:
        >>> with Network("http://127.0.0.1:8080") as net:
        ...     for node in net.nodes(operator=Operator.load().address):
        ...         print(node.id, node.state, node.reputation)
    """

    _client: httpx.Client
    _chain_id: int | None

    def __init__(self, url: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS, client: httpx.Client | None = None) -> None:
        """Talks to the gateway at ``url`` (default :func:`default_gateway_url`).

        Raises:
            ValueError: for a URL that is not http(s).
        """
        super().__init__(url)
        self._client = client or httpx.Client(timeout=timeout, headers={"accept": "application/json"})
        self._chain_id = None

    def __enter__(self) -> Network:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Closes the HTTP connections."""
        self._client.close()

    def _call(self, call: _Call[T]) -> T:
        try:
            response = self._client.request(call.method, self.url + call.path, json=call.body, params=call.params)
        except httpx.TransportError as err:
            raise _unreachable(self.url, err) from err
        return _decode(call, self.url, response)

    def models(self) -> list[Model]:
        """Models at least one node can serve now, with their live capacity."""
        return self._call(self._models())

    def nodes(self, *, model: str | None = None, operator: str | None = None) -> list[Node]:
        """Every node's standing (of one model, of one operator), best reputation first."""
        return self._call(self._nodes(model, operator))

    def node(self, node_id: str) -> Node:
        """One node's standing.

        Raises:
            ApiError: ``not_found`` for a node that never registered here.
        """
        return self._call(self._node(node_id))

    def status(self) -> Health:
        """The network's health: ``ok``, or ``degraded`` with its reasons, and the models served now."""
        return self._call(self._health())

    def info(self) -> NetworkInfo:
        """The chain id signed messages are bound to."""
        return self._call(self._info())

    def chain_id(self) -> int:
        """The network's chain id, asked once."""
        if self._chain_id is None:
            self._chain_id = self.info().chain_id
        return self._chain_id

    def rewards(self, operator: str | Operator) -> Rewards:
        """An operator's rewards: accrued, settling, settled, claimable, claimed, and per epoch with proofs."""
        return self._call(self._rewards(operator.address if isinstance(operator, Operator) else operator))

    def openapi(self) -> dict[str, Any]:
        """The gateway's OpenAPI document."""
        return self._call(self._openapi())

    def register(self, operator: Operator, node_id: str, models: Sequence[str], model_hashes: Sequence[str], *, gpu: str, version: str) -> Registered:
        """Registers (or re-registers) a node under ``operator`` with a signed ``NodeRegistration``.

        Raises:
            ApiError: ``conflict`` when another operator holds the id; ``registration_rejected``
                for a forged or expired one; ``invalid_body`` for bad fields.
        """
        body = operator.sign_registration(self.chain_id(), node_id, models, model_hashes, gpu, version)
        return self._call(self._register(body))

    def reinstate(self, operator: Operator, node_id: str) -> ActionResult:
        """Lifts a suspension: the node starts again on probation.

        Raises:
            ApiError: ``forbidden`` when ``operator`` is not the node's; ``not_found`` for an
                unknown node; ``conflict`` when the network refuses it now (``retry_after`` says
                when it may succeed).
        """
        return self._call(self._action(node_id, "reinstate", operator.sign_action(self.chain_id(), node_id, "reinstate")))

    def retire(self, operator: Operator, node_id: str) -> ActionResult:
        """Takes the node out for good.

        Raises:
            ApiError: as :meth:`reinstate`; ``conflict`` when it is already retired.
        """
        return self._call(self._action(node_id, "retire", operator.sign_action(self.chain_id(), node_id, "retire")))


class AsyncNetwork(_Api):
    """The GitBlock network through its gateway, for asyncio: the same calls as :class:`Network`, awaited.

    Example:
        >>> async with AsyncNetwork("http://127.0.0.1:8080") as net:
        ...     rewards = await net.rewards(Operator.load())
    """

    _client: httpx.AsyncClient
    _chain_id: int | None

    def __init__(self, url: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS, client: httpx.AsyncClient | None = None) -> None:
        """Talks to the gateway at ``url`` (default :func:`default_gateway_url`)."""
        super().__init__(url)
        self._client = client or httpx.AsyncClient(timeout=timeout, headers={"accept": "application/json"})
        self._chain_id = None

    async def __aenter__(self) -> AsyncNetwork:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the HTTP connections."""
        await self._client.aclose()

    async def _call(self, call: _Call[T]) -> T:
        try:
            response = await self._client.request(call.method, self.url + call.path, json=call.body, params=call.params)
        except httpx.TransportError as err:
            raise _unreachable(self.url, err) from err
        return _decode(call, self.url, response)

    async def models(self) -> list[Model]:
        """See :meth:`Network.models`."""
        return await self._call(self._models())

    async def nodes(self, *, model: str | None = None, operator: str | None = None) -> list[Node]:
        """See :meth:`Network.nodes`."""
        return await self._call(self._nodes(model, operator))

    async def node(self, node_id: str) -> Node:
        """See :meth:`Network.node`."""
        return await self._call(self._node(node_id))

    async def status(self) -> Health:
        """See :meth:`Network.status`."""
        return await self._call(self._health())

    async def info(self) -> NetworkInfo:
        """See :meth:`Network.info`."""
        return await self._call(self._info())

    async def chain_id(self) -> int:
        """See :meth:`Network.chain_id`."""
        if self._chain_id is None:
            self._chain_id = (await self.info()).chain_id
        return self._chain_id

    async def rewards(self, operator: str | Operator) -> Rewards:
        """See :meth:`Network.rewards`."""
        return await self._call(self._rewards(operator.address if isinstance(operator, Operator) else operator))

    async def openapi(self) -> dict[str, Any]:
        """See :meth:`Network.openapi`."""
        return await self._call(self._openapi())

    async def register(self, operator: Operator, node_id: str, models: Sequence[str], model_hashes: Sequence[str], *, gpu: str, version: str) -> Registered:
        """See :meth:`Network.register`."""
        body = operator.sign_registration(await self.chain_id(), node_id, models, model_hashes, gpu, version)
        return await self._call(self._register(body))

    async def reinstate(self, operator: Operator, node_id: str) -> ActionResult:
        """See :meth:`Network.reinstate`."""
        return await self._call(self._action(node_id, "reinstate", operator.sign_action(await self.chain_id(), node_id, "reinstate")))

    async def retire(self, operator: Operator, node_id: str) -> ActionResult:
        """See :meth:`Network.retire`."""
        return await self._call(self._action(node_id, "retire", operator.sign_action(await self.chain_id(), node_id, "retire")))
