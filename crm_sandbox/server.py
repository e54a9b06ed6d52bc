"""The sandbox CRM's HTTP server: the API contract, plus an admin API under ``/_sandbox``."""

from __future__ import annotations

import email.utils
import functools
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from crm_sandbox.data import DEFAULT_SHAPE, PATHS, CrmData, parse_time
from crm_sandbox.faults import FaultPlan
from crm_sandbox.ratelimit import TokenBucket

DEFAULT_TOKEN = "sandbox-token"
ADMIN_PREFIX = "/_sandbox"
MAX_LIMIT = 100
SHUTDOWN_POLL_SECONDS = 0.02
"""How often the serving thread looks for a stop request (the standard library's: 0.5 s)."""


def _pause(seconds: float) -> None:
    """Wait like a slow server; independent of ``time.sleep``, which tests may replace."""
    threading.Event().wait(seconds)


class BadQueryError(ValueError):
    """A query value the contract rejects with 400."""


class CrmSandbox:
    """A deterministic CRM that implements the API contract on loopback.

    Args:
        records: Records generated per path.
        seed: Seed of the generated data and of random faults.
        token: The bearer token the server accepts.
        latency: Seconds every data request waits before it answers.
        faults: Which requests fail, and how.
        rate_limit: Data requests served per second at most (a token bucket with a burst of
            as many); beyond it, ``429`` with ``Retry-After``.
        rate_limit_headers: Send ``RateLimit-*`` headers describing the bucket.
        shape: What records look like (``data.SHAPES``).
        clock_offset: Seconds the CRM's clock runs ahead of this machine's (negative: behind).
            Changes are stamped, and the ``Date`` header of responses set, by the CRM's clock;
            ``advance_clock`` moves it while serving.
    """

    def __init__(
        self,
        records: int = 1000,
        seed: int = 7,
        token: str = DEFAULT_TOKEN,
        latency: float = 0.0,
        faults: FaultPlan | None = None,
        rate_limit: float | None = None,
        rate_limit_headers: bool = False,
        shape: str = DEFAULT_SHAPE,
        clock_offset: float = 0.0,
    ) -> None:
        self.data = CrmData(records, seed, shape, clock_offset)
        self.bucket = TokenBucket(rate_limit) if rate_limit else None
        self.rate_limit_headers = rate_limit_headers
        self.token = token
        self.latency = latency
        self.faults = faults or FaultPlan(seed=seed)
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.records_served = 0
        self._triggers: defaultdict[str, dict[int, Callable[[], object]]] = defaultdict(dict)
        self._page_hooks: dict[tuple[str, str, int], Callable[[], object]] = {}
        self._seen: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._first_answer: float | None = None
        self._last_answer: float | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> CrmSandbox:
        """Serve in a background thread; ``port=0`` picks a free port."""
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        serve = functools.partial(self._server.serve_forever, poll_interval=SHUTDOWN_POLL_SECONDS)
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until the server stops."""
        if self._thread is not None:
            self._thread.join()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> CrmSandbox:
        return self.start() if self._server is None else self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def truth(self, path: str) -> dict[str, str]:
        """Ground truth of ``path``: every id with its ``modifiedtime``."""
        with self.data.lock:
            return self.data.store(path).truth()

    def modify(self, path: str, count: int, fields: dict[str, Any] | None = None) -> list[str]:
        """Modify ``count`` existing records of ``path`` (setting ``fields``); return their ids."""
        with self.data.lock:
            store = self.data.store(path)
            return store.modify(store.pick(count), fields)

    def change(
        self,
        path: str,
        ids: list[str],
        fields: dict[str, Any] | None = None,
        at: str | None = None,
    ) -> list[str]:
        """Change the records ``ids`` of ``path``; ``at`` stamps them with that modifiedtime.

        Without ``at`` the change gets the CRM's present, as the contract says; with it, the
        sandbox behaves as a faulty CRM would (a moment in the future, or a second change
        within the timestamp the record already has).
        """
        with self.data.lock:
            return self.data.store(path).modify(ids, fields, at)

    def now(self) -> str:
        """The CRM's present, in the contract's timestamp format."""
        return self.data.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def advance_clock(self, seconds: float) -> None:
        """Move the CRM's clock by ``seconds`` (its stamps and its ``Date`` header)."""
        with self.data.lock:
            self.data.clock_offset += seconds

    def add(self, path: str, count: int) -> list[str]:
        """Add ``count`` new records to ``path``; return their ids."""
        with self.data.lock:
            return self.data.store(path).add(count)

    def delete(self, path: str, count: int) -> list[str]:
        """Delete ``count`` existing records of ``path``; return their ids."""
        with self.data.lock:
            store = self.data.store(path)
            return store.delete(store.pick(count))

    def restore(self, path: str, ids: list[str]) -> list[str]:
        """Restore deleted records of ``path``; they come back with a new ``modifiedtime``."""
        with self.data.lock:
            return self.data.store(path).restore(ids)

    def on_request(self, path: str, number: int, action: Callable[[], object]) -> None:
        """Run ``action`` before the ``number``-th data request to ``path`` from now on is answered.

        1 is the next request. For changing records while a sync pages through a path (page
        drift), or for a test to learn that a sync reached a given request.
        """
        with self._stats_lock:
            self._triggers[path][self._seen[path] + number] = action

    def before_page(self, path: str, page: int, action: Callable[[], object]) -> None:
        """Run ``action`` before page ``page`` of a listing of ``path`` is answered, once.

        Unlike :meth:`on_request`, the action holds no lock of the sandbox: it may wait for
        other requests to be answered meanwhile (pages served out of order).
        """
        with self._stats_lock:
            self._page_hooks[("before", path, page)] = action

    def after_page(self, path: str, page: int, action: Callable[[], object]) -> None:
        """Run ``action`` once page ``page`` of a listing of ``path`` has been answered, once."""
        with self._stats_lock:
            self._page_hooks[("after", path, page)] = action

    def _page_hook(self, moment: str, path: str, page: int) -> None:
        with self._stats_lock:
            action = self._page_hooks.pop((moment, path, page), None)
        if action is not None:
            action()

    def _trigger(self, path: str) -> None:
        with self._stats_lock:
            self._seen[path] += 1
            action = self._triggers[path].pop(self._seen[path], None)
        if action is not None:
            with self.data.lock:
                action()

    def stats(self) -> dict[str, Any]:
        """Requests per path, responses per status, records served, seconds answering.

        ``answering_seconds`` runs from the first to the last data request answered.
        """
        with self._stats_lock:
            first, last = self._first_answer, self._last_answer
            return {
                "requests": dict(self.requests),
                "statuses": {str(code): n for code, n in self.statuses.items()},
                "records_served": self.records_served,
                "answering_seconds": last - first if first is not None and last else 0.0,
            }

    def reset_stats(self) -> None:
        """Zero the request and record counters."""
        with self._stats_lock:
            self._first_answer = self._last_answer = None
            self.requests.clear()
            self.statuses.clear()
            self.records_served = 0

    def _count(self, path: str, status: int, records: int = 0) -> None:
        now = time.monotonic()
        with self._stats_lock:
            if self._first_answer is None:
                self._first_answer = now
            self._last_answer = now
            self.requests[path] += 1
            self.statuses[status] += 1
            self.records_served += records


def _query(raw: str) -> tuple[int, int, int | None]:
    params = {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}
    try:
        page = int(params.get("page", "1"))
        limit = int(params.get("limit", str(MAX_LIMIT)))
        since = params.get("modified_since")
        since_micros = parse_time(since) if since is not None else None
    except ValueError as exc:
        raise BadQueryError(f"bad query value: {exc}") from exc
    if page < 1 or not 1 <= limit <= MAX_LIMIT:
        raise BadQueryError(f"page must be >= 1 and limit within 1..{MAX_LIMIT}")
    return page, limit, since_micros


def _handler_for(sandbox: CrmSandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        crm = sandbox

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    crm: CrmSandbox

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the sandbox reports through its stats, not stderr."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header: the CRM's present, not this machine's."""
        moment = self.crm.data.now().timestamp() if timestamp is None else timestamp
        return email.utils.formatdate(moment, usegmt=True)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        bucket = self.crm.bucket
        limits = bucket.headers() if bucket and self.crm.rate_limit_headers else {}
        for key, value in {**limits, **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, path: str, status: int, message: str, **headers: str) -> None:
        self.crm._count(path, status)
        self._send(status, orjson.dumps({"error": message}), headers)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith(ADMIN_PREFIX):
            self._admin_get(url.path.removeprefix(ADMIN_PREFIX), url.query)
            return
        self._data(url.path, url.query)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = orjson.loads(self.rfile.read(length)) if length else {}
        if not url.path.startswith(ADMIN_PREFIX):
            self._send(405, orjson.dumps({"error": "method not allowed"}))
            return
        self._admin_post(url.path.removeprefix(ADMIN_PREFIX), body)

    def _data(self, path: str, raw_query: str) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.crm.token}":
            self._error(path, 401, "invalid or expired access token")
            return
        if path not in PATHS:
            self._error(path, 404, f"no such resource: {path}")
            return
        try:
            page, limit, since = _query(raw_query)
        except BadQueryError as exc:
            self._error(path, 400, str(exc))
            return
        if self.crm.latency:
            _pause(self.crm.latency)
        if self._refused(path):
            return
        listing = since is None
        if listing:
            self.crm._page_hook("before", path, page)
        self.crm._trigger(path)
        fault = self.crm.faults.draw(path)
        if fault is not None and self._fault(path, fault):
            return
        with self.crm.data.lock:
            blobs = self.crm.data.store(path).page(page, limit, since)
        body = b'{"list":[' + b",".join(blobs) + b'],"page":%d,"limit":%d}' % (page, limit)
        self.crm._count(path, 200, len(blobs))
        self._send(200, _corrupt(body, fault))
        if listing:
            self.crm._page_hook("after", path, page)

    def _refused(self, path: str) -> bool:
        """Refuse the request with 429 if the rate limit has no token left."""
        bucket = self.crm.bucket
        if bucket is None:
            return False
        wait = bucket.take()
        if wait is None:
            return False
        self._error(path, 429, "rate limit exceeded", **{"Retry-After": str(wait)})
        return True

    def _fault(self, path: str, kind: str) -> bool:
        """Answer with the fault ``kind``; return False for faults applied to the body."""
        if kind == "reset":
            self.crm._count(path, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            self.close_connection = True
            self.connection.close()
            return True
        if kind == "slow":
            _pause(self.crm.faults.slow_seconds)
            return False
        if kind == "429":
            self._error(
                path, 429, "rate limited", **{"Retry-After": str(self.crm.faults.retry_after)}
            )
            return True
        if kind[0].isdigit():
            status = int(kind.split("-")[0])
            self._error(path, status, f"sandbox fault {kind}")
            return True
        return False

    def _admin_get(self, route: str, raw_query: str) -> None:
        if route == "/truth":
            query = parse_qs(raw_query)
            paths = query.get("path", list(PATHS))
            self._send(200, orjson.dumps({path: self.crm.truth(path) for path in paths}))
        elif route == "/stats":
            self._send(200, orjson.dumps(self.crm.stats()))
        else:
            self._send(404, orjson.dumps({"error": f"no admin route {route}"}))

    def _admin_post(self, route: str, body: dict[str, Any]) -> None:
        try:
            result = self._admin_action(route, body)
        except (KeyError, ValueError, TypeError) as exc:
            self._send(400, orjson.dumps({"error": f"bad admin request: {exc!r}"}))
            return
        self._send(200, orjson.dumps(result))

    def _admin_action(self, route: str, body: dict[str, Any]) -> Any:
        crm = self.crm
        if route == "/modify":
            return {"ids": crm.modify(body["path"], int(body["count"]), body.get("fields"))}
        if route == "/add":
            return {"ids": crm.add(body["path"], int(body["count"]))}
        if route == "/delete":
            return {"ids": crm.delete(body["path"], int(body["count"]))}
        if route == "/restore":
            return {"ids": crm.restore(body["path"], [str(key) for key in body["ids"]])}
        if route == "/stats/reset":
            crm.reset_stats()
            return {"ok": True}
        if route == "/faults":
            for path, kinds in body.get("script", {}).items():
                crm.faults.script(path, list(kinds))
            crm.faults.rate = float(body.get("rate", crm.faults.rate))
            crm.latency = float(body.get("latency", crm.latency))
            return {"ok": True}
        raise KeyError(route)


def _corrupt(body: bytes, fault: str | None) -> bytes:
    """Apply a body fault to a well-formed page."""
    if fault == "html":
        return b"<html><body>Service temporarily unavailable</body></html>"
    if fault == "truncated":
        return body[: max(len(body) // 2, 1)]
    if fault == "no-list":
        return b'{"data": [], "page": 1}'
    if fault in ("missing-id", "duplicate-id"):
        page = orjson.loads(body)
        if page["list"]:
            if fault == "missing-id":
                del page["list"][0]["record"]["id"]
            else:
                page["list"].append(page["list"][0])
        return orjson.dumps(page)
    return body
