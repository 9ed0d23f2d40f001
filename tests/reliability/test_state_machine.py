"""A stateful model of the record: registers, partners, unpartners, posts and reads with
several agencies against the live test server. After every step, each agency can read each
record exactly when the model says it is partnered (404 otherwise), and each record's history
is exactly the sequence of acknowledged posts."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from domain.identifiers import CHECK_LETTERS
from tests.conftest import event, registration

# Hypothesis seeds the global `random` per example, so identifiers come from elsewhere: the
# same PNC twice would make the second registration a 409.
_SYSTEM = random.SystemRandom()


def _unique_pnc() -> str:
    year, serial = _SYSTEM.randint(0, 25), _SYSTEM.randint(1, 9_999_999)
    return f"20{year:02d}/{serial:07d}{CHECK_LETTERS[(year * 10**7 + serial) % 23]}"


# Agencies that may register, partner and post entries; police:kent registers everything
# and so stays a Responsible Authority partner (partnering can never leave none).
REGISTRAR = "police:kent"
AGENCIES = ["police:essex", "probation:midlands", "prison:LEI", "health:leicester-nhs"]


@pytest.fixture
def machine_env(client, auth):
    return client, auth


def test_the_record_behaves_as_its_model(machine_env):
    client, auth = machine_env

    class RecordModel(RuleBasedStateMachine):
        layer = Bundle("records")

        @initialize()
        def start(self):
            self.partners: dict[str, set[str]] = {}
            self.history: dict[str, list[str]] = {}  # nominal_id -> acknowledged event_ids

        @rule(target=layer, lead=st.sampled_from([None, "probation:midlands"]))
        def register(self, lead):
            body = registration(lead_agency=lead, identifiers={"pnc": _unique_pnc()})
            r = client.post("/v1/nominals", json=body, headers=auth(REGISTRAR))
            assert r.status_code == 201, r.text
            nominal_id = r.json()["nominal_id"]
            self.partners[nominal_id] = {REGISTRAR} | ({lead} if lead else set())
            self.history[nominal_id] = [body["event_id"]]
            return nominal_id

        @rule(nominal_id=layer, agency=st.sampled_from(AGENCIES))
        def partner(self, nominal_id, agency):
            body = event("AgencyPartnered", {"agency": agency, "reason": "joint management"})
            r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth(REGISTRAR))
            if agency in self.partners[nominal_id]:
                assert r.status_code == 422, r.text  # already partnered: nothing would change
                return
            assert r.status_code == 201, r.text
            self.partners[nominal_id].add(agency)
            self.history[nominal_id].append(body["event_id"])

        @rule(nominal_id=layer, agency=st.sampled_from(AGENCIES))
        def unpartner(self, nominal_id, agency):
            body = event("PartneringEnded", {"agency": agency, "reason": "no longer involved"})
            r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth(REGISTRAR))
            lead = self._lead(nominal_id)
            if agency not in self.partners[nominal_id] or agency == lead:
                assert r.status_code == 422, r.text
                return
            assert r.status_code == 201, r.text
            self.partners[nominal_id].discard(agency)
            self.history[nominal_id].append(body["event_id"])

        @rule(nominal_id=layer, agency=st.sampled_from([REGISTRAR, *AGENCIES]), again=st.booleans())
        def post_entry(self, nominal_id, agency, again):
            body = event(
                "EntryRecorded",
                {"entry_type": "contact", "subject": "Contact", "body": "Seen; compliant."},
            )
            path = f"/v1/nominals/{nominal_id}/events"
            r = client.post(path, json=body, headers=auth(agency))
            if agency not in self.partners[nominal_id]:
                assert r.status_code == 404, r.text
                return
            assert r.status_code == 201, r.text
            self.history[nominal_id].append(body["event_id"])
            if again:  # a client retry: answered from the store, nothing appended
                retry = client.post(path, json=body, headers=auth(agency))
                assert retry.status_code == 200
                assert retry.json()["version"] == r.json()["version"]

        @rule(nominal_id=layer, agency=st.sampled_from([REGISTRAR, *AGENCIES]))
        def read(self, nominal_id, agency):
            r = client.get(f"/v1/nominals/{nominal_id}", headers=auth(agency))
            expected = 200 if agency in self.partners[nominal_id] else 404
            assert r.status_code == expected, r.text

        @rule(nominal_id=consumes(layer))
        def forget(self, nominal_id):
            """Stop using a record (keeps the bundle small; the record stays checked)."""

        @invariant()
        def reads_follow_partnering(self):
            for nominal_id, partners in self.partners.items():
                for agency in [REGISTRAR, *AGENCIES]:
                    r = client.get(
                        f"/v1/nominals/{nominal_id}/history",
                        params={"limit": 1000},
                        headers=auth(agency),
                    )
                    if agency in partners:
                        assert r.status_code == 200, r.text
                        ids = [e["event_id"] for e in r.json()["events"]]
                        assert ids == self.history[nominal_id]
                    else:
                        assert r.status_code == 404, (agency, r.text)

        def _lead(self, nominal_id):
            r = client.get(f"/v1/nominals/{nominal_id}", headers=auth(REGISTRAR))
            return r.json().get("lead_agency")

    RecordModel.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=12,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    RecordModel.TestCase().runTest()
