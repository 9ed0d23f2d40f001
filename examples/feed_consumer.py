"""A feed consumer: follow mappa-record's feed and fetch what it is allowed to read.

    python examples/feed_consumer.py --url http://127.0.0.1:8000 \
        --feed-token "$(mappa-record token --agency police:kent --scope feed:read)" \
        --read-token "$(mappa-record token --agency police:kent --scope records:read)" \
        --state .feed-position

It remembers the last position it handled in the state file (written after each notice is
handled), so a restart resumes exactly where it stopped: no notice missed, none twice.
With --stream it holds a server-sent-events connection open and resumes it with
Last-Event-ID; without, it polls pages. See docs/integrating.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


def pages(
    client: httpx.Client, token: str, after: int, limit: int = 500
) -> Iterator[dict[str, Any]]:
    """Every notice after `after`, page by page, until the feed is caught up."""
    while True:
        r = client.get(
            "/v1/feed",
            params={"after": after, "limit": limit},
            headers={"Authorization": f"Bearer {token}"},
        )
        r.raise_for_status()
        page = r.json()
        yield from page["notices"]
        if len(page["notices"]) < limit:
            return
        after = page["next_after"]


def stream(client: httpx.Client, token: str, after: int) -> Iterator[dict[str, Any]]:
    """Notices as they commit, over server-sent events; reconnects with Last-Event-ID."""
    last = after
    while True:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "text/event-stream",
            "Last-Event-ID": str(last),
        }
        try:
            with client.stream("GET", "/v1/feed", headers=headers, timeout=None) as r:
                r.raise_for_status()
                data: list[str] = []
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        notice = json.loads("\n".join(data))
                        data = []
                        last = notice["position"]
                        yield notice
        except httpx.TransportError as e:
            print(f"stream interrupted ({e}); resuming after {last}", file=sys.stderr)
            time.sleep(2)


def read_position(state: Path) -> int:
    return int(state.read_text()) if state.exists() else 0


def save_position(state: Path, position: int) -> None:
    """Write the position atomically: a crash leaves the old one or the new one."""
    tmp = state.with_suffix(".tmp")
    tmp.write_text(str(position))
    os.replace(tmp, state)


def handle(client: httpx.Client, read_token: str, notice: dict[str, Any]) -> None:
    """What a consumer does with a notice: here, fetch the event if we may, and print it."""
    r = client.get(notice["detail_url"], headers={"Authorization": f"Bearer {read_token}"})
    if r.status_code == 404:  # not partnered to that record: the notice is all we get
        print(f"{notice['position']:>8} {notice['type']:<28} {notice['nominal_id']} (not ours)")
        return
    r.raise_for_status()
    event = r.json()["events"][0]
    print(f"{notice['position']:>8} {event['type']:<28} {event['nominal_id']} v{event['version']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--feed-token", required=True, help="a token with feed:read")
    p.add_argument("--read-token", required=True, help="a token with records:read")
    p.add_argument("--state", type=Path, default=Path(".feed-position"))
    p.add_argument("--stream", action="store_true", help="hold a server-sent-events stream open")
    p.add_argument("--poll-seconds", type=float, default=5.0)
    args = p.parse_args()
    with httpx.Client(base_url=args.url, timeout=30) as client:
        while True:
            after = read_position(args.state)
            notices = (
                stream(client, args.feed_token, after)
                if args.stream
                else pages(client, args.feed_token, after)
            )
            for notice in notices:
                handle(client, args.read_token, notice)
                save_position(args.state, notice["position"])
            time.sleep(args.poll_seconds)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
