"""The export's pure resilience logic (telemetry.export.policy), driven by a fake clock."""

from __future__ import annotations

import pytest

from telemetry.export import policy
from telemetry.export.policy import CLOSED, HALF_OPEN, OPEN, Backoff, Breaker, Figures, Pending


def middle(low, high):
    return (low + high) / 2


def test_backoff_doubles_from_one_second_to_sixteen():
    backoff = Backoff()
    assert [backoff.delay(n, middle) for n in range(1, 8)] == [1, 2, 4, 8, 16, 16, 16]


@pytest.mark.parametrize("failures", [1, 3, 5, 9])
def test_backoff_jitter_is_plus_or_minus_a_quarter(failures):
    backoff = Backoff()
    base = backoff.delay(failures, middle)
    assert backoff.delay(failures, lambda low, high: low) == pytest.approx(base * 0.75)
    assert backoff.delay(failures, lambda low, high: high) == pytest.approx(base * 1.25)
    for _ in range(200):
        assert base * 0.75 <= backoff.delay(failures) <= base * 1.25


def test_breaker_opens_after_five_consecutive_failures_for_sixty_seconds():
    breaker = Breaker(threshold=5, open_for=60)
    for n in range(4):
        assert breaker.failure(100.0 + n) is False
        assert breaker.state(100.0 + n) == CLOSED
    assert breaker.failure(104.0) is True
    assert breaker.state(104.0) == OPEN and not breaker.allows(163.9)
    assert breaker.reopens_at() == 164.0
    assert breaker.state(164.0) == HALF_OPEN and breaker.allows(164.0)
    assert breaker.trips == 1


def test_a_failed_trial_opens_it_again_and_a_good_one_closes_it():
    breaker = Breaker(threshold=5, open_for=60)
    for _ in range(5):
        breaker.failure(0.0)
    assert breaker.state(60.0) == HALF_OPEN
    assert breaker.failure(60.0) is True  # the trial failed: open for another 60 s
    assert breaker.state(119.0) == OPEN and breaker.trips == 2
    assert breaker.state(120.0) == HALF_OPEN
    breaker.success()
    assert breaker.state(120.0) == CLOSED and breaker.failures == 0


def test_a_success_resets_the_count_of_consecutive_failures():
    breaker = Breaker(threshold=5, open_for=60)
    for _ in range(4):
        breaker.failure(0.0)
    breaker.success()
    for _ in range(4):
        assert breaker.failure(1.0) is False
    assert breaker.state(1.0) == CLOSED


def rows(n, start=0):
    return [(f"{i:032x}", f"{i + 1:016x}") for i in range(start, start + n)]


def test_the_buffer_hands_back_its_oldest_batches_beyond_its_span_limit():
    pending = Pending(max_spans=10, max_age=300, batch_size=4)
    assert pending.add(rows(8), now=0) == []
    out = pending.add(rows(6, start=8), now=1)
    assert [len(b) for b in out] == [4]  # the oldest batch, 14 -> 10 spans
    assert out[0] == rows(4)
    assert pending.spans == 10
    assert pending.peek() == rows(4, start=4)


def test_the_buffer_hands_back_batches_older_than_its_age_limit():
    pending = Pending(max_spans=100, max_age=300, batch_size=512)
    pending.add(rows(3), now=0)
    pending.add(rows(2, start=3), now=200)
    assert pending.expired(300) == []
    assert pending.expired(300.5) == [rows(3)]
    assert pending.spans == 2
    assert pending.take_all() == [rows(2, start=3)] and pending.spans == 0


def test_the_batch_being_sent_is_never_handed_back():
    pending = Pending(max_spans=8, max_age=10, batch_size=4)
    pending.add(rows(8), now=0)
    sending = pending.peek()
    assert sending == rows(4)
    out = pending.add(rows(4, start=8), now=1)  # overflow while the first batch is in flight
    assert out == [rows(4, start=4)]  # the one behind it goes, not the one being sent
    assert pending.expired(100) == [rows(4, start=8)] and pending.take_all() == []
    assert pending.done() == sending and pending.spans == 0
    pending.add(rows(4), now=0)
    pending.peek()
    pending.release()  # a failed send: it may be handed back now
    assert pending.expired(100) == [rows(4)]


def test_health_verdicts():
    assert policy.verdict(Figures()) == ("healthy", [])
    status, issues = policy.verdict(Figures(consecutive_failures=2, last_failure=5.0))
    assert status == "degraded" and "2 consecutive failed exports" in issues[0]
    assert policy.verdict(Figures(fallback_bytes=10))[0] == "degraded"
    assert policy.verdict(Figures(queued=9000, capacity=10_000))[0] == "degraded"
    assert policy.verdict(Figures(breaker_state=OPEN, consecutive_failures=5))[0] == "failing"
    assert policy.verdict(Figures(breaker_state=HALF_OPEN, consecutive_failures=5))[0] == "failing"
    # Drops are an issue until the next success.
    assert policy.verdict(Figures(dropped=3, last_drop=10.0, last_success=5.0))[0] == "degraded"
    assert policy.verdict(Figures(dropped=3, last_drop=10.0, last_success=11.0))[0] == "healthy"


def test_scrub_hides_credentials_queries_and_configured_header_values():
    text = ("HTTPConnectionPool(host='u:pw@collector', port=4318): https://user:pw@collector:4318/v1/traces"
            "?api_key=abc Authorization: Bearer s3cr3t-token x-api-key=tenant-key-123")
    scrubbed = policy.scrub(text, secrets=("tenant-key-123",))
    for secret in ("user:pw", "abc", "s3cr3t-token", "tenant-key-123"):
        assert secret not in scrubbed
    assert "collector:4318/v1/traces" in scrubbed


def test_small_batches_queued_behind_the_first_go_out_with_it():
    pending = Pending(max_spans=100, max_age=300, batch_size=6)
    for start in range(0, 12, 2):  # the span writer's small flushes, waiting behind a slow send
        pending.add(rows(2, start=start), now=start)
    assert pending.peek() == rows(6) and len(pending) == 4  # three joined, three behind
    assert pending.done() == rows(6)
    assert pending.peek() == rows(6, start=6) and pending.spans == 6


def test_joined_keeps_the_order_and_the_size():
    batches = [rows(2), rows(3, start=2), rows(4, start=5), rows(1, start=9)]
    assert policy.joined(batches, 5) == [rows(5), rows(5, start=5)]
    assert policy.joined(batches, 3) == batches
