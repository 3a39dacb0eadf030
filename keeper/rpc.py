"""JSON-RPC to the node: batched requests, retries with backoff, failover to a second URL.

The transport is web3.py's own provider (``HTTPProvider``, ``IPCProvider`` or the synchronous
``LegacyWebSocketProvider``) used at its lowest level, ``make_request`` / ``make_batch_request``:
no middleware, no formatters, no contract layer. Many calls go out in one HTTP request (a JSON-RPC
batch), in chunks of ``batch_size``.

Errors come in two kinds:

- :class:`RpcError`: the node answered with a JSON-RPC error (a revert, a refused log range, ...).
  Never retried here: the caller decides. In a batch, each failed item is returned as an
  :class:`RpcError` in its slot instead of raising, so one bad call does not spoil the others.
- transport failures (connection refused, timeout, HTTP 5xx or 429, garbage instead of JSON, and
  answers that do not fit the request: :class:`MalformedResponse`):
  retried with exponential backoff, switching to the fallback URL at once when there is one, and
  trying the primary again after ``recheck_primary`` seconds. When every attempt failed,
  :class:`RpcUnavailable` is raised. Each failure is reported by kind (:func:`transport_error_kind`)
  to the ``on_transport_error`` callback.

Every answer is checked before it is used: each id must be one this client sent in that request
(web3 hands out the ids; :class:`_IdTap` remembers them), each item must hold a result or an
error, and a result must have the shape its method returns (a quantity, a 32-byte hash, return
data in whole 32-byte words, a list of logs, ...). A node that mixes up answers, or a proxy that
cuts them short, is then a transport failure to retry, never data the keeper acts on.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from web3 import HTTPProvider, IPCProvider
from web3.providers import LegacyWebSocketProvider

from keeper.abi import decode_revert_reason

__all__ = [
    "RpcError",
    "RpcUnavailable",
    "MalformedResponse",
    "RpcStats",
    "Rpc",
    "Call",
    "redact_url",
    "describe_transport_error",
    "transport_error_kind",
    "TRANSPORT_ERROR_KINDS",
]

log = logging.getLogger("keeper.rpc")

Call = tuple[str, list[Any]]
"""One JSON-RPC call: ``(method, params)``."""


class RpcError(Exception):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None) -> None:
        self.method = method
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))

    @property
    def revert_reason(self) -> str | None:
        """The ``Error(string)`` reason of a reverted call, when the node returned its data."""
        data = self.data
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str):
            return decode_revert_reason(data)
        return None

    @property
    def is_revert(self) -> bool:
        """Whether this is an execution revert (as opposed to a refused or malformed request)."""
        return (
            self.code == 3
            or "revert" in self.message.lower()
            or self.revert_reason is not None
        )


class RpcUnavailable(ConnectionError):
    """No endpoint answered after every retry; the message names the URLs and the last error."""


class MalformedResponse(ValueError):
    """The node's answer does not fit the request: ids that match no call of it, an item with
    neither result nor error, or a result of the wrong shape. Retried like any transport failure."""


# Exceptions that mean "the transport failed", worth a retry or the fallback URL.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.HTTPError,
    ConnectionError,
    TimeoutError,
    OSError,
    ValueError,  # a body that is not JSON
)


def redact_url(url: str) -> str:
    """A URL without what usually holds an API key (user info, path and query)."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    tail = "/..." if "/" in rest.rstrip("/") or "?" in rest else ""
    return f"{scheme}://{host}{tail}"


@dataclass
class RpcStats:
    """Counts of what was sent, for metrics and the benchmark."""

    requests: int = 0
    """Transport round trips (an HTTP request, batched or not)."""
    calls: int = 0
    """JSON-RPC calls (each item of a batch counts)."""
    by_method: Counter[str] = field(default_factory=Counter)
    transport_errors: int = 0
    failovers: int = 0


class _IdTap:
    """Stands in for a web3 provider's ``request_counter``: hands out increasing ids as it does
    and remembers those of the request being sent, so its answer can be matched to them."""

    def __init__(self) -> None:
        self._next = itertools.count(1)
        self.issued: list[int] = []

    def __iter__(self) -> _IdTap:
        return self

    def __next__(self) -> int:
        value = next(self._next)
        self.issued.append(value)
        return value


@dataclass
class _Endpoint:
    url: str
    provider: Any
    batch_ok: bool = True
    failures: int = 0
    ids: _IdTap = field(default_factory=_IdTap)

    def __post_init__(self) -> None:
        self.provider.request_counter = self.ids

    def make_request(self, method: str, params: list[Any]) -> Any:
        """One call; its answer checked (see the module's docstring)."""
        self.ids.issued.clear()
        response = self.provider.make_request(method, params)
        _check_answer(method, response, self.ids.issued[-1])
        return response

    def make_batch_request(self, calls: Sequence[Call]) -> Any:
        """A JSON-RPC batch; each answer checked. One error object for the whole batch (a node
        that refuses the batch) is returned as is."""
        self.ids.issued.clear()
        response = self.provider.make_batch_request([(m, p) for m, p in calls])
        if isinstance(response, dict) and "error" in response:
            return response
        if not isinstance(response, list) or len(response) != len(calls):
            count = len(response) if isinstance(response, list) else "no list"
            raise MalformedResponse(f"the node answered a batch of {len(calls)} calls with {count} answers")
        sent = self.ids.issued[-len(calls) :]
        got = [r.get("id") if isinstance(r, dict) else None for r in response]
        if got != sent:  # web3 sorts the answers by id: they must be the ids sent, in order
            raise MalformedResponse(f"the node answered ids {got[:5]} to a batch with ids {sent[:5]} (first five)")
        for (method, _), item in zip(calls, response):
            _check_answer(method, item, None)
        return response


def _make_provider(url: str, timeout: float) -> Any:
    if url.startswith(("http://", "https://")):
        return HTTPProvider(
            url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
    if url.startswith(("ws://", "wss://")):
        return LegacyWebSocketProvider(url, websocket_timeout=int(max(1, timeout)))
    return IPCProvider(url, timeout=timeout)


class Rpc:
    """A JSON-RPC client over one or two URLs.

    :param urls: the primary URL, then an optional fallback.
    :param timeout: seconds per transport request.
    :param retries: extra attempts after a transport failure (over all URLs).
    :param backoff: first backoff delay in seconds; doubles each attempt, with jitter.
    :param batch_size: most calls in one request (``1`` disables batching).
    :param recheck_primary: seconds on the fallback before the primary is tried again.
    :param on_request: called as ``on_request(url, n_calls, seconds, ok)`` after each round trip.
    :param on_transport_error: called as ``on_transport_error(url, kind)`` after each transport
        failure, ``kind`` one of :data:`TRANSPORT_ERROR_KINDS`.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        batch_size: int = 1000,
        recheck_primary: float = 30.0,
        on_request: Callable[[str, int, float, bool], None] | None = None,
        on_transport_error: Callable[[str, str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        urls = [u for u in urls if u]
        if not urls:
            raise ValueError("at least one RPC URL is needed")
        self.endpoints = [_Endpoint(u, _make_provider(u, timeout)) for u in urls]
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.batch_size = max(1, batch_size)
        self.recheck_primary = recheck_primary
        self.on_request = on_request
        self.on_transport_error = on_transport_error
        self.stats = RpcStats()
        self._sleep = sleep
        self._active = 0
        self._switched_at = 0.0
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    # -- endpoint selection -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL in use now."""
        return self.endpoints[self._active].url

    def _current(self, recheck: bool = False) -> _Endpoint:
        if (
            recheck
            and self._active != 0
            and self.recheck_primary >= 0
            and time.monotonic() - self._switched_at >= self.recheck_primary
        ):
            log.info("trying the primary RPC URL again", extra={"url": redact_url(self.endpoints[0].url)})
            self._active = 0
        return self.endpoints[self._active]

    def _fail_over(self, failed: _Endpoint, exc: BaseException) -> None:
        self.stats.transport_errors += 1
        failed.failures += 1
        if len(self.endpoints) < 2:
            return
        self._active = (self._active + 1) % len(self.endpoints)
        self._switched_at = time.monotonic()
        self.stats.failovers += 1
        log.warning(
            "RPC endpoint failed, switching",
            extra={
                "failed_url": redact_url(failed.url),
                "url": redact_url(self.endpoints[self._active].url),
                "error": f"{type(exc).__name__}: {exc}",
            },
        )

    def _with_retries(self, n_calls: int, send: Callable[[_Endpoint], Any]) -> Any:
        delay = self.backoff
        last: BaseException | None = None
        tried: list[str] = []
        for attempt in range(self.retries + 1):
            ep = self._current(recheck=attempt == 0)
            tried.append(ep.url)
            started = time.monotonic()
            try:
                out = send(ep)
            except _TRANSPORT_ERRORS as exc:
                if isinstance(exc, requests.HTTPError) and not _retryable_http(exc):
                    raise RpcUnavailable(
                        f"the node at {redact_url(ep.url)} refused the request: {exc}"
                    ) from exc
                last = exc
                self._report(ep.url, n_calls, started, ok=False)
                if self.on_transport_error is not None:
                    self.on_transport_error(ep.url, transport_error_kind(exc))
                self._fail_over(ep, exc)
                if attempt < self.retries:
                    self._sleep(min(self.max_backoff, delay) * (0.75 + 0.5 * random.random()))
                    delay *= 2
                continue
            self._report(ep.url, n_calls, started, ok=True)
            return out
        urls = " or ".join(dict.fromkeys(redact_url(u) for u in tried))
        attempts = "1 attempt" if self.retries == 0 else f"{self.retries + 1} attempts"
        raise RpcUnavailable(
            f"cannot reach the node at {urls} ({attempts}): {describe_transport_error(last)}"
        ) from last

    def _report(self, url: str, n_calls: int, started: float, ok: bool) -> None:
        self.stats.requests += 1
        if self.on_request is not None:
            self.on_request(url, n_calls, time.monotonic() - started, ok)

    # -- calls ------------------------------------------------------------------------------

    def request(self, method: str, params: list[Any] | None = None) -> Any:
        """One call; returns its result.

        :raises RpcError: if the node answers with an error.
        :raises RpcUnavailable: if no endpoint answers.
        """
        params = params or []
        with self._lock:
            self.stats.calls += 1
            self.stats.by_method[method] += 1
            response = self._with_retries(1, lambda ep: ep.make_request(method, params))
        return _result_or_error(method, response)

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Many calls, ``batch_size`` per round trip; results in order.

        A call the node answers with an error gets an :class:`RpcError` in its slot (not raised).

        :raises RpcUnavailable: if no endpoint answers.
        """
        if not calls:
            return []
        out: list[Any] = []
        with self._lock:
            for m, _ in calls:
                self.stats.by_method[m] += 1
            self.stats.calls += len(calls)
            start = 0
            size = self.batch_size
            while start < len(calls):
                chunk = calls[start : start + size]
                results = self._send_chunk(chunk)
                if results is None:  # the node refused the batch as too large
                    size = max(1, size // 2)
                    log.info("RPC batch refused, using smaller batches", extra={"batch_size": size})
                    self.batch_size = size
                    continue
                out.extend(results)
                start += len(chunk)
        return out

    def _send_chunk(self, chunk: Sequence[Call]) -> list[Any] | None:
        if len(chunk) == 1 or not self._current().batch_ok:
            return [self._single(m, p) for m, p in chunk]
        response = self._with_retries(len(chunk), lambda ep: ep.make_batch_request(chunk))
        if isinstance(response, dict):
            # one error object for the whole batch: too large, or batches not supported
            err = response.get("error") or {}
            message = str(err.get("message", response))
            if len(chunk) > 1 and _looks_like_size_limit(message):
                return None
            log.warning(
                "the node does not take JSON-RPC batches; sending calls one by one",
                extra={"error": message},
            )
            self._current().batch_ok = False
            return [self._single(m, p) for m, p in chunk]
        return [_result_or_error(m, r, raise_error=False) for (m, _), r in zip(chunk, response)]

    def _single(self, method: str, params: list[Any]) -> Any:
        response = self._with_retries(1, lambda ep: ep.make_request(method, params))
        return _result_or_error(method, response, raise_error=False)

    def close(self) -> None:
        """Release the transport sessions."""
        for ep in self.endpoints:
            mgr = getattr(ep.provider, "_request_session_manager", None)
            cache = getattr(mgr, "session_cache", None)
            if cache is not None:
                try:
                    for _, session in list(cache.items()):
                        session.close()
                    cache.clear()
                except Exception:  # noqa: BLE001 - best effort at shutdown
                    pass


def describe_transport_error(exc: BaseException | None) -> str:
    """A short, readable reason for a transport failure."""
    if exc is None:
        return "no answer"
    text = str(exc)
    low = text.lower()
    if isinstance(exc, requests.Timeout) or "timed out" in low:
        return "timed out"
    if "connection refused" in low:
        return "connection refused (is the node running, and is the port right?)"
    if "name or service not known" in low or "nodename nor servname" in low or "failed to resolve" in low:
        return "host name not found"
    if isinstance(exc, requests.HTTPError):
        return f"HTTP error {getattr(exc.response, 'status_code', '?')}"
    if isinstance(exc, FileNotFoundError):
        return f"no IPC socket at {exc.filename}"
    return f"{type(exc).__name__}: {text[:160]}"


TRANSPORT_ERROR_KINDS = (
    "timeout",
    "connection_refused",
    "connection",
    "http_5xx",
    "http_429",
    "http_4xx",
    "malformed",
    "other",
)
"""The kinds :func:`transport_error_kind` sorts transport failures into (metric labels)."""


def transport_error_kind(exc: BaseException) -> str:
    """A short label for a transport failure: one of :data:`TRANSPORT_ERROR_KINDS`."""
    low = str(exc).lower()
    if isinstance(exc, (requests.Timeout, TimeoutError)) or "timed out" in low:
        return "timeout"
    if isinstance(exc, requests.HTTPError):
        status = getattr(exc.response, "status_code", None) or 0
        return "http_429" if status == 429 else "http_5xx" if status >= 500 else "http_4xx"
    if isinstance(exc, ConnectionRefusedError) or "connection refused" in low:
        return "connection_refused"
    if isinstance(exc, (requests.ConnectionError, ConnectionError)):
        return "connection"
    if isinstance(exc, ValueError):
        return "malformed"
    return "other"


def _retryable_http(exc: requests.HTTPError) -> bool:
    status = getattr(exc.response, "status_code", None)
    return status is None or status >= 500 or status == 429


def _looks_like_size_limit(message: str) -> bool:
    text = message.lower()
    return any(k in text for k in ("too many", "too large", "exceed", "limit", "maximum", "max "))


_QUANTITY = re.compile(r"0x[0-9a-fA-F]+")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_WORDS = re.compile(r"0x(?:[0-9a-fA-F]{64})*")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


def _matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def _object_or_null(value: Any) -> bool:
    return value is None or isinstance(value, dict)


_RESULT_SHAPES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    **{
        m: ("a hex quantity", _matches(_QUANTITY))
        for m in (
            "eth_blockNumber",
            "eth_chainId",
            "eth_getBalance",
            "eth_getTransactionCount",
            "eth_estimateGas",
            "eth_gasPrice",
            "eth_maxPriorityFeePerGas",
        )
    },
    "eth_call": ("return data in whole 32-byte words", _matches(_WORDS)),
    "eth_getCode": ("hex bytes", _matches(_DATA)),
    "eth_sendRawTransaction": ("a 32-byte transaction hash", _matches(_HASH)),
    "eth_getLogs": ("a list of logs", lambda v: isinstance(v, list)),
    "eth_getBlockByNumber": ("a block or null", _object_or_null),
    "eth_getTransactionReceipt": ("a receipt or null", _object_or_null),
    "eth_getTransactionByHash": ("a transaction or null", _object_or_null),
}
"""The shape of each method's result (the keeper's methods; others are not checked)."""


def _check_answer(method: str, response: Any, sent_id: int | None) -> None:
    """Raise :class:`MalformedResponse` unless ``response`` answers ``method`` (with ``sent_id``
    when given): a JSON-RPC object with a result of the method's shape, or an error."""
    if not isinstance(response, dict):
        raise MalformedResponse(f"{method}: the node sent {response!r:.120} instead of a JSON-RPC answer")
    if sent_id is not None and response.get("id") != sent_id:
        if response.get("id") is not None or "error" not in response:  # no id: a parse error
            raise MalformedResponse(f"{method}: the node answered id {response.get('id')!r} to id {sent_id}")
    if response.get("error") is not None:
        return
    if "result" not in response:
        raise MalformedResponse(f"{method}: the node's answer holds neither result nor error: {response!r:.120}")
    shape = _RESULT_SHAPES.get(method)
    if shape is not None and not shape[1](response["result"]):
        raise MalformedResponse(f"{method}: expected {shape[0]}, got {response['result']!r:.80}")


def _result_or_error(method: str, response: Any, raise_error: bool = True) -> Any:
    if not isinstance(response, dict):
        raise RpcUnavailable(f"{method}: the node sent a malformed response: {response!r:.200}")
    if "error" in response and response["error"] is not None:
        err = response["error"]
        if isinstance(err, dict):
            exc = RpcError(method, err.get("code"), str(err.get("message", "")), err.get("data"))
        else:
            exc = RpcError(method, None, str(err))
        if raise_error:
            raise exc
        return exc
    if "result" not in response:
        raise RpcUnavailable(f"{method}: the node sent a response without result: {response!r:.200}")
    return response["result"]
