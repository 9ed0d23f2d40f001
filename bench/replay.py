"""Replay data-set lines through the public API, each with a token for its line's agency.

The server stamps `recorded_at` and `recorded_by` itself (a client cannot set them), so a
replay keeps every fact and its order but not the source's times (nor a minutes document's
hash: a small PDF is uploaded in its place); the ids are the same,
since the service derives a nominal's id from its registration's `event_id`. Used by the
tests to prove the synthetic data set is accepted by the real service, and usable as the
"import over HTTP" baseline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from bench.environment import ServiceProcess

WRITE = "records:read records:write"
PDF = "application/pdf"
MINUTES_PDF = b"%PDF-1.4\n%minutes of "


def post_lines(svc: ServiceProcess, lines: Iterable[dict[str, Any]]) -> int:
    """Post every line in order; raise on the first answer that is not 201. The count posted."""
    tokens: dict[str, str] = {}
    posted = 0
    with httpx.Client(base_url=svc.base_url, timeout=60) as http:
        for line in lines:
            agency = line["recorded_by"]["agency"]
            if agency not in tokens:
                tokens[agency] = svc.token(agency, WRITE)
            headers = {"Authorization": f"Bearer {tokens[agency]}"}
            if line["type"] == "NominalRegistered":
                body = {"event_id": line["event_id"], "occurred_at": line["occurred_at"]}
                r = http.post("/v1/nominals", json=body | line["payload"], headers=headers)
            elif line["type"] == "MinutesUploaded":
                # Minutes are a document: uploaded as one, the service records its hash.
                p = line["payload"]
                form = {"event_id": line["event_id"], "meeting_id": p["meeting_id"]}
                form |= {"meeting_date": p["meeting_date"], "level": str(p["level"])}
                document = ("minutes.pdf", MINUTES_PDF + p["meeting_id"].encode(), PDF)
                r = http.post(
                    f"/v1/nominals/{line['nominal_id']}/minutes",
                    data=form,
                    files={"file": document},
                    headers=headers,
                )
            else:
                body = {k: line[k] for k in ("event_id", "type", "occurred_at", "payload")}
                r = http.post(
                    f"/v1/nominals/{line['nominal_id']}/events", json=body, headers=headers
                )
            if r.status_code != 201:
                raise AssertionError(
                    f"{line['type']} by {agency} to {line['nominal_id']} answered "
                    f"{r.status_code}: {r.text[:400]}"
                )
            if line["type"] == "NominalRegistered" and r.json()["nominal_id"] != line["nominal_id"]:
                raise AssertionError("the service gave the nominal another id than the data set")
            posted += 1
    return posted
