"""Group commit: concurrent writes share requests, each caller returns once its own was answered."""

import threading
import time

import pytest

from shared.group_commit import GroupCommit


class Recorder:
    """A `send` that records each request and, while `gate` is unset, holds the first one open."""

    def __init__(self, fail_on=None):
        self.requests: list[list] = []
        self.gate = threading.Event()
        self.first_in = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list) -> None:
        self.requests.append(list(items))
        self.first_in.set()
        self.gate.wait(10)
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"refused {self.fail_on}")


def waiting(commit: GroupCommit, count: int) -> None:
    """Until `count` writes wait behind the request in flight (threads start when the scheduler says)."""
    deadline = time.monotonic() + 10
    while len(commit._waiting) < count:
        assert time.monotonic() < deadline, f"{len(commit._waiting)} of {count} writes waiting"
        time.sleep(0.005)


def run_all(targets) -> list:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    return threads


def test_a_write_alone_goes_at_once_in_a_request_of_its_own():
    sent = Recorder()
    sent.gate.set()
    commit = GroupCommit(sent, limit=100)
    commit.add(["a", "b"])
    commit.add(["c"])
    assert sent.requests == [["a", "b"], ["c"]]


def test_writes_added_while_a_request_is_out_go_together_in_the_next_and_each_caller_waits_for_its_own():
    sent = Recorder()
    commit = GroupCommit(sent, limit=100)
    returned = []

    def writer(name):
        def write():
            commit.add([name])
            returned.append(name)
        return write

    first = run_all([writer("first")])
    assert sent.first_in.wait(5)
    others = run_all([writer(f"w{n}") for n in range(10)])
    waiting(commit, 10)
    assert returned == [] and len(sent.requests) == 1
    sent.gate.set()
    for thread in first + others:
        thread.join(5)
    assert sent.requests[0] == ["first"]
    assert sorted(sent.requests[1]) == sorted(f"w{n}" for n in range(10)) and len(sent.requests) == 2
    assert sorted(returned) == sorted(["first"] + [f"w{n}" for n in range(10)])


def test_a_request_carries_at_most_the_limit_and_never_splits_a_callers_items():
    sent = Recorder()
    commit = GroupCommit(sent, limit=5)
    first = run_all([lambda: commit.add(["x"])])
    assert sent.first_in.wait(5)
    others = run_all([lambda n=n: commit.add([f"{n}a", f"{n}b"]) for n in range(6)])
    waiting(commit, 6)
    sent.gate.set()
    for thread in first + others:
        thread.join(5)
    assert all(len(request) <= 5 for request in sent.requests)
    assert sum(len(request) for request in sent.requests) == 13
    for request in sent.requests:
        for item in request:
            if item.endswith("a"):
                assert item[:-1] + "b" in request
    with pytest.raises(ValueError):
        commit.add(list("abcdef"))


def test_a_failed_request_raises_in_every_caller_it_carried_and_only_in_them():
    sent = Recorder(fail_on="bad")
    commit = GroupCommit(sent, limit=100)
    errors = {}

    def writer(name):
        def write():
            try:
                commit.add([name])
                errors[name] = None
            except RuntimeError as exc:
                errors[name] = str(exc)
        return write

    first = run_all([writer("first")])
    assert sent.first_in.wait(5)
    others = run_all([writer("bad"), writer("good")])
    waiting(commit, 2)
    sent.gate.set()
    for thread in first + others:
        thread.join(5)
    assert errors == {"first": None, "bad": "refused bad", "good": "refused bad"}  # "good" shared its request
    commit.add(["after"])  # the next caller leads again
    assert sent.requests[-1] == ["after"]


def test_many_threads_hammering_lose_nothing_and_send_nothing_twice():
    sent = []
    lock = threading.Lock()

    def send(items):
        time.sleep(0.001)
        with lock:
            sent.extend(items)

    commit = GroupCommit(send, limit=20)
    threads = run_all([lambda n=n: [commit.add([(n, k)]) for k in range(50)] for n in range(16)])
    for thread in threads:
        thread.join(30)
    assert sorted(sent) == sorted((n, k) for n in range(16) for k in range(50))
