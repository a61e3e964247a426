"""Log templates (aiops.logpatterns): drain3 per service, masking, ids that survive a restart."""

from __future__ import annotations

from aiops.logpatterns import MAX_BODY, TemplateMiner, is_exception


def test_variables_are_masked_and_lines_of_one_kind_share_a_template():
    miner = TemplateMiner()
    a = miner.add("api", "user 4d2a46c7-71cb-4cf1-b5bb-b68406d9da6f paid 42 at 0x7fff trace 81b8fb777a61c172")
    b = miner.add("api", "user 5e3b46c7-71cb-4cf1-b5bb-b68406d9da6f paid 7 at 0x1a2b trace 91c8fb777a61c173")
    assert a.new and not b.new
    assert a.key == b.key
    assert miner.template(a.key) == "user <UUID> paid <NUM> at <HEX> trace <ID>"


def test_services_have_their_own_templates():
    miner = TemplateMiner()
    a = miner.add("api", "connected to db")
    b = miner.add("worker", "connected to db")
    assert a.key != b.key and a.key[0] == "api" and b.key[0] == "worker"


def test_template_ids_are_stable_across_a_restart():
    miner = TemplateMiner()
    first = miner.add("api", "order 17 created")
    other = miner.add("api", "payment failed: card declined")
    again = TemplateMiner(miner.state())
    assert again.add("api", "order 99 created").key == first.key
    assert again.add("api", "payment failed: card declined").key == other.key
    assert not again.add("api", "payment failed: card declined").new


def test_hostile_lines_are_bounded():
    miner = TemplateMiner()
    mined = miner.add("api", "x" * (MAX_BODY * 50))
    assert len(miner.template(mined.key)) <= MAX_BODY


def test_exception_lines_are_recognised():
    assert is_exception("java.lang.IllegalStateException: No instances available")
    assert is_exception("Traceback (most recent call last):")
    assert is_exception("    at com.example.Foo.bar(Foo.java:42)")
    assert not is_exception("order 17 created")
