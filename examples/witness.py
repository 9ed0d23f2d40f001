"""A witness of the mappa-record transparency log: keep the latest checkpoint, and check every
new one extends it (docs/adr/020).

An inspectorate, an oversight board or a partner agency runs this outside the service, with
its own copy of the log's verifier key (GET /v1/log/public-key, compared out of band once).
Each poll fetches the latest signed checkpoint, checks the signature, asks for a proof that
it extends the one kept, checks that proof itself (RFC 6962, no trust in the service), and
keeps the new checkpoint. A checkpoint that does not extend the kept one is a fork: the log
was rewritten, and the witness raises the alarm with both checkpoints as evidence.

    KEY=$(curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/log/public-key)
    python examples/witness.py --url http://127.0.0.1:8000 --token "$TOKEN" --key "$KEY" \\
        --state witness-checkpoint.txt --every 60

The proof checking below uses the service's own module for brevity; any RFC 6962 verifier
(Go's transparency-dev/merkle, Rust's, pymerkle) would do as well.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

import httpx

from service import merkle
from service.signed_note import Checkpoint, Verifier, open_checkpoint


class Fork(Exception):
    """The log's new checkpoint does not extend the one the witness kept."""

    def __init__(self, message: str, kept: str, new: str) -> None:
        super().__init__(message)
        self.kept, self.new = kept, new


class Witness:
    def __init__(self, client: httpx.Client, verifier: Verifier, kept: str | None = None) -> None:
        self.client = client
        self.verifier = verifier
        self.kept = kept  # the latest checkpoint seen and checked, as its signed note

    def poll(self) -> Checkpoint | None:
        """Fetch the latest checkpoint and check it extends the one kept; keep it. Fork if
        it does not; None while the log has issued no checkpoint."""
        r = self.client.get("/v1/log/checkpoint")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        note = r.text
        new = open_checkpoint(note, self.verifier)  # the signature first: else ignore it
        if self.kept is not None:
            old = open_checkpoint(self.kept, self.verifier)
            if new.size < old.size:
                raise Fork(f"the log shrank from {old.size} to {new.size}", self.kept, note)
            if new.size == old.size and new.root != old.root:
                raise Fork(f"two roots for size {new.size}", self.kept, note)
            if new.size > old.size:
                proof = self.client.get(
                    "/v1/log/proof/consistency", params={"from": old.size, "to": new.size}
                )
                proof.raise_for_status()
                path = [base64.b64decode(p) for p in proof.json()["consistency_path"]]
                if not merkle.verify_consistency(old.size, new.size, old.root, new.root, path):
                    raise Fork(
                        f"the log of {new.size} does not extend the one of {old.size}",
                        self.kept,
                        note,
                    )
        self.kept = note
        return new


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True, help="a token with audit:read or feed:read")
    p.add_argument("--key", required=True, help="the log's verifier key")
    p.add_argument("--state", type=Path, required=True, help="where the kept checkpoint lives")
    p.add_argument("--every", type=float, default=60.0, help="seconds between polls")
    args = p.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.token}"}
    kept = args.state.read_text() if args.state.exists() else None
    with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client:
        witness = Witness(client, Verifier.parse(args.key), kept)
        while True:
            try:
                checkpoint = witness.poll()
            except Fork as fork:
                print(f"FORK: {fork}\n--- kept\n{fork.kept}--- new\n{fork.new}", file=sys.stderr)
                raise SystemExit(2) from None
            if checkpoint is not None and witness.kept is not None:
                args.state.write_text(witness.kept)
                print(f"checkpoint of {checkpoint.size} events: consistent", flush=True)
            time.sleep(args.every)


if __name__ == "__main__":
    main()
