"""Payloads the report tests post, and a unique agency per test (the reports are filtered to
it, so a test counts only its own records on the session's shared database)."""

from __future__ import annotations

import uuid
from typing import Any


def unique(kind: str) -> str:
    return f"{kind}:t-{uuid.uuid4().hex[:12]}"


def meeting(
    meeting_id: str, level: int, held_on: str, invited=(), attended=(), apologies=()
) -> dict[str, Any]:
    return {
        "meeting_id": meeting_id,
        "level": level,
        "held_on": held_on,
        "chair": "Chair",
        "invited": list(invited),
        "attended": [{"agency": a, "name": "N", "role": "R"} for a in attended],
        "apologies": list(apologies),
    }


def minutes(meeting_id: str, level: int, meeting_date: str) -> dict[str, Any]:
    return {
        "meeting_id": meeting_id,
        "meeting_date": meeting_date,
        "level": level,
        "document": {
            "sha256": "a" * 64,
            "filename": "m.pdf",
            "media_type": "application/pdf",
            "size": 10,
        },
    }


def referral(
    referral_id: str, release: str | None = None, invite=("health:trust",), level: int = 2
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "referral_id": referral_id,
        "requested_level": level,
        "reasons": "needs a multi-agency plan",
        "rosh_level": "high",
        "imminence": "within weeks",
        "agencies_to_invite": [{"agency": a, "why": "treatment"} for a in invite],
    }
    if release:
        body["expected_release_on"] = release
    return body


def decision(referral_id: str, on: str, decision: str = "level_2") -> dict[str, Any]:
    return {"referral_id": referral_id, "decision": decision, "feedback": "f", "decided_on": on}


def action(action_id: str, agency: str, due_on: str, meeting_id: str | None = None):
    body = {
        "action_id": action_id,
        "description": "check the address",
        "assigned_agency": agency,
        "due_on": due_on,
    }
    if meeting_id:
        body["meeting_id"] = meeting_id
    return body


def completed(action_id: str, on: str) -> dict[str, Any]:
    return {"action_id": action_id, "outcome": "address verified", "completed_on": on}


def level(to: int, on: str) -> dict[str, Any]:
    return {"to": to, "rationale": "as reviewed", "decided_on": on}
