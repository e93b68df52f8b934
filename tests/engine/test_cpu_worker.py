"""engine.cpu_worker: one thread runs the turns of every attached client (fake clients)."""

from __future__ import annotations

import threading

from engine.cpu_worker import CpuWorker


class Client:
    """Does ``work`` turns, recording the thread of each; detaches when told to stop."""

    def __init__(self, worker: CpuWorker, name: str, work: int = 0) -> None:
        self.worker, self.name, self.work = worker, name, work
        self.threads: list[threading.Thread] = []
        self.log: list[str] | None = None  # shared order of turns, when set
        self.stop = False
        self.done = threading.Event()  # set when idle (no work left) or detached
        self.fail = False

    def cpu_turn(self) -> bool:
        if self.fail:
            raise RuntimeError("client broke")
        if self.stop:
            self.worker.detach(self)
            self.done.set()
            return False
        if self.work:
            self.work -= 1
            self.threads.append(threading.current_thread())
            if self.log is not None:
                self.log.append(self.name)
        if not self.work:
            self.done.set()
        return self.work > 0


def stop_all(worker: CpuWorker, *clients: Client) -> None:
    """Detach every client and check that the worker's thread ends with the last."""
    thread = worker.thread
    for client in clients:
        client.stop = True
    worker.wake()
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive() and worker.thread is None


def test_clients_share_one_thread_that_ends_with_the_last() -> None:
    worker = CpuWorker("test-step")
    a, b = Client(worker, "a", 5), Client(worker, "b", 3)
    worker.attach(a)
    worker.attach(b)
    assert a.done.wait(10) and b.done.wait(10)
    thread = worker.thread
    assert thread is not None and thread.name == "test-step"
    assert set(a.threads) == set(b.threads) == {thread}
    stop_all(worker, a, b)
    # Attaching again starts a new thread.
    c = Client(worker, "c", 2)
    worker.attach(c)
    assert c.done.wait(10)
    assert c.threads[0] is not thread and c.threads[0].name == "test-step"
    stop_all(worker, c)


def test_work_queued_later_is_picked_up_after_a_wake() -> None:
    worker = CpuWorker("test-step")
    a = Client(worker, "a")
    worker.attach(a)
    for _ in range(20):  # the worker sleeps between, and must not miss a wake
        a.done.clear()
        a.work = 1
        worker.wake()
        assert a.done.wait(10)
    stop_all(worker, a)


def test_a_client_that_raises_is_detached_and_the_others_go_on() -> None:
    worker = CpuWorker("test-step")
    bad, good = Client(worker, "bad", 1), Client(worker, "good")
    bad.fail = True
    worker.attach(bad)
    worker.attach(good)
    good.work = 3
    worker.wake()
    assert good.done.wait(10)
    assert good.threads and good.threads[0] is worker.thread
    stop_all(worker, good)


class Long(Client):
    """One turn of ``steps`` steps (after ``go``) that lets the others run before each."""

    def __init__(self, worker: CpuWorker, steps: int, log: list[str]) -> None:
        super().__init__(worker, "L", 1)
        self.steps, self.log = steps, log
        self.go = threading.Event()

    def cpu_turn(self) -> bool:
        if self.stop or not self.work:
            return super().cpu_turn()
        assert self.go.wait(10)
        for _ in range(self.steps - 1):
            self.worker.between_steps()
            assert self.log is not None
            self.log.append("L")
        self.worker.between_steps()
        return super().cpu_turn()


def test_a_long_turn_lets_the_others_step_between_its_steps() -> None:
    worker = CpuWorker("test-step")
    log: list[str] = []
    long = Long(worker, 4, log)
    worker.attach(long)  # its turn starts and waits for go
    short = Client(worker, "s", 6)
    short.log = log
    worker.attach(short)
    long.go.set()
    assert long.done.wait(10) and short.done.wait(10)
    # One turn of the short client before each of the long turn's steps; between_steps
    # does not re-enter the long client itself.
    assert "".join(log) == "sLsLsLsLss"
    stop_all(worker, long, short)


def test_between_steps_off_the_worker_thread_does_nothing() -> None:
    worker = CpuWorker("test-step")
    a = Client(worker, "a", 2)
    worker.between_steps()  # no thread, no clients: nothing happens
    assert a.threads == []
