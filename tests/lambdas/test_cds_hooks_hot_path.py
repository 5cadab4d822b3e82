"""What the hook path does on every call: the single-use ``jti`` claim and the request's repr
(which Powertools formats into a debug line per call) stay cheap, and the repr carries nothing
of the patient."""

from __future__ import annotations

import time

from lambdas.cds_hooks.replay import MemoryReplayCache
from lambdas.cds_hooks.request import HookRequest
from local_platform import ehr, ehr_bundle
from local_platform.ehr import ADMITTED
from tests.lambdas.predict_fixtures import valid_record

HELD = 20_000
CLAIMS = 200


def test_a_jti_is_claimed_once_and_freed_only_when_it_expires() -> None:
    cache = MemoryReplayCache()
    now = int(time.time())
    assert cache.claim("iss a", now + 300)
    assert not cache.claim("iss a", now + 300)
    assert not cache.claim("iss a", now + 900)  # a replay with another expiry is still one
    assert cache.claim("iss b", now - 1)  # already expired: claimed, then dropped
    assert cache.claim("iss c", now + 300)
    assert len(cache) == 2  # the expired one went at the next claim
    assert cache.claim("iss b", now + 300)  # its expired claim no longer blocks it


def test_a_replay_is_refused_among_many_held_jtis_and_claims_stay_cheap() -> None:
    """20,000 live jtis (a busy EHR over five minutes): each claim must not walk them all.
    Rebuilding the held set per claim costs ~1 ms here, so 200 claims ~0.2 s or more; a heap
    costs microseconds. The bound leaves a 10x margin for a loaded machine."""
    cache = MemoryReplayCache()
    expires = int(time.time()) + 300
    for n in range(HELD):
        assert cache.claim(f"iss held-{n}", expires)
    started = time.process_time()
    for n in range(CLAIMS):
        assert cache.claim(f"iss new-{n}", expires)
        assert not cache.claim(f"iss held-{n * 7}", expires)
    assert time.process_time() - started < 0.05
    assert len(cache) == HELD + CLAIMS


def test_the_hook_requests_repr_names_no_patient_data_and_is_short() -> None:
    record = valid_record()
    patient, stay = "repr-patient-77", "repr-stay-88"
    resources = ehr_bundle.record_resources(record, patient, stay, ADMITTED)
    request = HookRequest.model_validate(ehr.hook_request(resources, patient, stay))
    for text in (repr(request), str(request)):
        assert "encounter-discharge" in text
        for private in (patient, stay, "Practitioner", "birthDate"):
            assert private not in text
        assert len(text) < 200
