"""What the HTTP layer costs: every page fetched and parsed, 32 requests in flight, two ways.

``uv run --with aiohttp python bench/transport.py --url URL`` against a running sandbox
(``crm-sandbox --records 20000``). Prints wall and CPU seconds of the process for a thread
per request in flight with ``requests`` (how the sync fetches today) and for one asyncio
event loop with ``aiohttp`` (a compiled HTTP parser). aiohttp is not a dependency of the
project; ``uv run --with`` brings it for this measurement only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import orjson
import requests

from crm_assets.sources.crm.settings import RESOURCES

TOKEN = "sandbox-token"
IN_FLIGHT = 32
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def jobs(url: str, pages: int) -> list[tuple[str, dict[str, int]]]:
    """Every page of every resource, as (URL, query) pairs."""
    return [
        (f"{url}{resource.path}", {"page": page, "limit": 100})
        for resource in RESOURCES
        for page in range(1, pages + 1)
    ]


def threaded(work: list[tuple[str, dict[str, int]]]) -> int:
    """Records fetched with a thread per request in flight and ``requests``."""
    session = requests.Session()

    def one(job: tuple[str, dict[str, int]]) -> int:
        response = session.get(job[0], params=job[1], headers=HEADERS, timeout=30)
        return len(orjson.loads(response.content)["list"])

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        return sum(pool.map(one, work))


def evented(work: list[tuple[str, dict[str, int]]]) -> int:
    """Records fetched by one event loop with ``aiohttp``."""
    import aiohttp  # type: ignore[import-not-found, unused-ignore]

    async def main() -> int:
        slots = asyncio.Semaphore(IN_FLIGHT)
        async with aiohttp.ClientSession(headers=HEADERS) as session:

            async def one(job: tuple[str, dict[str, int]]) -> int:
                async with slots, session.get(job[0], params=job[1]) as response:
                    return len(orjson.loads(await response.read())["list"])

            counts = await asyncio.gather(*(one(job) for job in work))
        return sum(counts)

    return asyncio.run(main())


def measure(name: str, fetch: Callable[[], int]) -> dict[str, object]:
    """Wall and process CPU seconds of one way of fetching everything."""
    cpu, wall = time.process_time(), time.perf_counter()
    records = fetch()
    return {
        "transport": name,
        "records": records,
        "wall_seconds": round(time.perf_counter() - wall, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
    }


def main() -> int:
    """Measure both ways, twice each, alternating."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pages", type=int, default=200, help="pages per resource")
    args = parser.parse_args()
    work = jobs(args.url, args.pages)
    for _ in range(2):
        print(json.dumps(measure("threads + requests", lambda: threaded(work))))
        print(json.dumps(measure("asyncio + aiohttp", lambda: evented(work))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
