"""Group commit with real threads: callers arriving while a batch is written share the next
one, each gets its own outcome, and leadership passes on so no caller waits for others."""

from __future__ import annotations

import threading
import time

import pytest

from orchestrator.storage.group_commit import GroupCommit

WAIT = 10


class Recorder:
    """A batch writer that records its batches and can be held inside a batch."""

    def __init__(self) -> None:
        self.batches: list[list] = []
        self.hold: dict[int, threading.Event] = {}  # batch number -> released when set
        self.entered: dict[int, threading.Event] = {}

    def gate(self, n: int) -> threading.Event:
        self.hold[n], self.entered[n] = threading.Event(), threading.Event()
        return self.hold[n]

    def __call__(self, items: list):
        n = len(self.batches)
        self.batches.append(list(items))
        if n in self.hold:
            self.entered[n].set()
            assert self.hold[n].wait(WAIT)
        return [ValueError(f"bad {i}") if isinstance(i, str) and i.startswith("bad") else i * 10 for i in items]


def submit_in_thread(group: GroupCommit, item, results: dict) -> threading.Thread:
    def run() -> None:
        try:
            results[item] = group.submit(item)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results[item] = exc
    t = threading.Thread(target=run)
    t.start()
    return t


def wait_queued(group: GroupCommit, n: int) -> None:
    deadline = time.monotonic() + WAIT
    while len(group._queue) < n:  # noqa: SLF001 - how many callers wait, to start the next batch
        assert time.monotonic() < deadline
        time.sleep(0.005)


def behind_a_held_batch(group: GroupCommit, rec: Recorder, items: list) -> dict:
    """Caller 1 leads batch 0, held until `items` have all queued behind it; then all answer."""
    release = rec.gate(0)
    results: dict = {}
    first = submit_in_thread(group, 1, results)
    assert rec.entered[0].wait(WAIT)
    others = [submit_in_thread(group, i, results) for i in items]
    wait_queued(group, len(items))
    release.set()
    for t in [first, *others]:
        t.join(WAIT)
    return results


def test_a_lone_caller_writes_its_own_batch_in_its_own_thread():
    seen = []
    group = GroupCommit(lambda items: seen.append(threading.current_thread()) or [i + 1 for i in items])
    assert group.submit(1) == 2
    assert group.submit(5) == 6
    assert seen == [threading.current_thread()] * 2


def test_callers_arriving_during_a_batch_share_the_next_one():
    rec = Recorder()
    results = behind_a_held_batch(GroupCommit(rec), rec, list(range(2, 7)))
    assert rec.batches[0] == [1]
    assert sorted(rec.batches[1]) == [2, 3, 4, 5, 6]  # one transaction for the five
    assert len(rec.batches) == 2
    assert results == {i: i * 10 for i in range(1, 7)}


def test_an_item_at_fault_fails_alone():
    rec = Recorder()
    results = behind_a_held_batch(GroupCommit(rec), rec, [2, "bad-a", 3])
    assert len(rec.batches[1]) == 3  # written together
    assert results[2] == 20 and results[3] == 30
    assert isinstance(results["bad-a"], ValueError) and str(results["bad-a"]) == "bad bad-a"


def test_a_failed_batch_fails_its_callers_and_the_next_caller_still_leads():
    calls = []

    def run(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return items

    group = GroupCommit(run)
    with pytest.raises(RuntimeError, match="database is locked"):
        group.submit(1)
    assert group.submit(2) == 2


def test_the_leader_answers_once_its_batch_is_done_and_a_waiting_caller_leads_the_next():
    rec = Recorder()
    release0, release1 = rec.gate(0), rec.gate(1)
    group = GroupCommit(rec)
    results: dict = {}
    leader = submit_in_thread(group, 1, results)
    assert rec.entered[0].wait(WAIT)
    follower = submit_in_thread(group, 2, results)
    wait_queued(group, 1)
    release0.set()
    assert rec.entered[1].wait(WAIT)  # the follower leads batch 1 ...
    leader.join(WAIT)
    assert not leader.is_alive() and results[1] == 10  # ... while the first leader has answered
    assert follower.is_alive()
    release1.set()
    follower.join(WAIT)
    assert results[2] == 20


def test_batches_hold_at_most_max_batch_items():
    rec = Recorder()
    results = behind_a_held_batch(GroupCommit(rec, max_batch=2), rec, list(range(2, 7)))
    assert [len(b) for b in rec.batches] == [1, 2, 2, 1]
    assert results == {i: i * 10 for i in range(1, 7)}


def test_a_wrong_number_of_outcomes_is_an_error_for_every_caller():
    group = GroupCommit(lambda items: [])
    with pytest.raises(RuntimeError, match="0 outcomes for 1 items"):
        group.submit(1)
