"""``crm-sandbox``: serve the deterministic sandbox CRM on loopback."""

from __future__ import annotations

import argparse
import sys
import time

from crm_sandbox.data import DEFAULT_SHAPE, PATHS, SHAPES
from crm_sandbox.faults import FaultPlan
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one")
    parser.add_argument("--records", type=int, default=1000, help="records per path")
    parser.add_argument("--seed", type=int, default=7, help="seed of data and faults")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token to accept")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of failing requests")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds on 429")
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="requests served per second at most"
    )
    parser.add_argument(
        "--rate-limit-headers", action="store_true", help="send RateLimit-* headers"
    )
    parser.add_argument("--shape", choices=SHAPES, default=DEFAULT_SHAPE, help="record shape")
    parser.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        help="seconds the CRM's clock runs ahead of this machine's (negative: behind)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the data, and serve until interrupted."""
    args = _parser().parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("crm-sandbox: refusing to listen beyond loopback", file=sys.stderr)
        return 2
    started = time.perf_counter()
    faults = FaultPlan(rate=args.fault_rate, retry_after=args.retry_after, seed=args.seed)
    sandbox = CrmSandbox(
        args.records,
        args.seed,
        args.token,
        args.latency,
        faults,
        rate_limit=args.rate_limit,
        rate_limit_headers=args.rate_limit_headers,
        shape=args.shape,
        clock_offset=args.clock_offset,
    )
    took = time.perf_counter() - started
    sandbox.start(args.host, args.port)
    print(
        f"crm-sandbox: serving {sandbox.url} ({args.records} records on each of "
        f"{len(PATHS)} paths, {', '.join(PATHS)}, for the nine resources; built in "
        f"{took:.1f}s; admin API under {sandbox.url}/_sandbox)",
        flush=True,
    )
    try:
        sandbox.wait()
    except KeyboardInterrupt:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
