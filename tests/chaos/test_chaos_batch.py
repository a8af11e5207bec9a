"""A 1,000-task batch under mixed faults, then a resume: nothing lost, nothing paid twice.

Everything at once, seeded: the fake answers some requests with every fault it knows
(on create, status and file), a TCP proxy in front of the API resets some connections
before, after and during requests, and some tasks misbehave (never finish for a while,
go backwards, report unknown statuses, vanish, finish without a URL, expire, fail).
``run_batch`` runs the batch with a journal; a second run over the same journal, with the
faults gone, resumes it. After each run the test asserts, and prints, the table in
``docs/reliability.md`` (``pytest tests/chaos -s`` shows it).
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import os
import random
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import aiohttp
import anyio
import attrs
import pytest

from starvideos_async import StarVideosError, VideoRequest
from starvideos_async.batch import BatchResult, run_batch
from starvideos_async.testing import FakeStarVideos, Fault

from ._support import (
    KEY,
    SEED,
    SERVICE_FAULTS,
    ChaosProxy,
    ProxyMode,
    RecordingClient,
    RefusingResolver,
    client_options,
    fake_options,
    fault_for,
    texts_of,
)
from .conftest import Guard

N = 1000
#: Chance that a request meets each fault (the fake takes the first that fires).
CREATE_FAULTS: list[tuple[str, Literal["before", "after"], float]] = [
    ("429-retry-after-seconds", "before", 0.02),
    ("429-retry-after-http-date", "before", 0.01),
    ("429-without-retry-after", "before", 0.01),
    ("503", "before", 0.004),
    ("500", "after", 0.004),
    ("html-gateway-page-502", "before", 0.004),
    ("html-gateway-page-504", "after", 0.004),
    ("error-payload-on-200", "before", 0.003),
    ("empty-body", "after", 0.003),
    ("truncated-json", "after", 0.003),
    ("wrong-types", "after", 0.003),
    ("slow-past-read-timeout", "after", 0.002),
    ("dropped-connection", "before", 0.003),
    ("dropped-connection", "after", 0.003),
    ("reset-mid-response", "after", 0.003),
    ("reset-after-the-id", "after", 0.01),
]
#: Each status fault per status call; file faults per download request.
STATUS_SHARE = 0.004
FILE_FAULTS = [n for n in SERVICE_FAULTS if n.startswith(("429", "50", "html-gateway", "slow"))]
FILE_SHARE = 0.01
#: Share of API connections refused (before the proxy), then the proxy's dice.
REFUSED = 0.01
PROXY: dict[ProxyMode, float] = {
    "pass": 0.97,
    "reset-on-accept": 0.01,
    "reset-after-request": 0.01,
    "reset-mid-response": 0.01,
}


def arm_faults(fake: FakeStarVideos) -> None:
    for name, when, share in CREATE_FAULTS:
        fake.inject(fault_for(name, when), "create", times=None, probability=share)
    for name in SERVICE_FAULTS:
        fake.inject(fault_for(name), "status", times=None, probability=STATUS_SHARE)
    for name in FILE_FAULTS:
        fake.inject(fault_for(name), "file", times=None, probability=FILE_SHARE)
    for nbytes in (0, 100, 8 * 1024):
        fake.inject(Fault.drop_after(nbytes), "file", times=None, probability=FILE_SHARE)


# -- task anomalies, by creation number --------------------------------------------------


@attrs.define
class Anomalies:
    """Makes every 100th-task family misbehave, as it is created; counts what it did."""

    fake: FakeStarVideos
    done: Counter[str] = attrs.Factory(Counter)
    _seen: int = 0
    _later: list[tuple[float, int, Callable[[], None]]] = attrs.Factory(list)
    _seq: itertools.count[int] = attrs.Factory(itertools.count)

    def _at(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._later, (time.monotonic() + delay, next(self._seq), action))

    def _safely(self, action: Callable[[str], object], task_id: str) -> Callable[[], None]:
        def run() -> None:
            if task_id in self.fake.tasks:
                action(task_id)

        return run

    def _new_task(self, task_id: str, number: int) -> None:
        fake = self.fake
        kind = number % 100
        if kind == 1:
            fake.hold(task_id)
            self._at(0.3, self._safely(fake.release, task_id))
            self.done["held for a while"] += 1
        elif kind == 2:
            self._at(0.004, self._safely(lambda t: fake.set_status(t, "processing"), task_id))
            self._at(0.010, self._safely(lambda t: fake.set_status(t, "queued"), task_id))
            self._at(0.030, self._safely(lambda t: fake.set_status(t, None), task_id))
            self.done["status went backwards"] += 1
        elif kind == 3:
            fake.set_status(task_id, "moderating")
            self._at(0.030, self._safely(lambda t: fake.set_status(t, None), task_id))
            self.done["unknown status"] += 1
        elif kind == 4:
            self._at(0.005, self._safely(fake.remove, task_id))
            self.done["404 mid-wait"] += 1
        elif kind == 5:
            fake.set_fields(task_id, video_url=None)
            self.done["completed without video_url"] += 1
        elif kind == 6:
            fake.expire(task_id, 410)
            self.done["video_url 410"] += 1
        elif kind == 7:
            fake.fail(task_id, "content moderation: rejected")
            self.done["failed"] += 1
        elif kind == 8:
            fake.set_status(task_id, "cancelled")
            self.done["cancelled"] += 1

    def tick(self) -> None:
        requests = self.fake.requests
        while self._seen < len(requests):
            rec = requests[self._seen]
            self._seen += 1
            if rec.endpoint == "create" and rec.task_id is not None:
                task = self.fake.tasks.get(rec.task_id)
                if task is not None:
                    self._new_task(task.id, task.number)
        now = time.monotonic()
        while self._later and self._later[0][0] <= now:
            heapq.heappop(self._later)[2]()

    async def run(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            self.tick()
            with anyio.move_on_after(0.002):
                await stop.wait()
        while self._later:  # let every hold be released
            heapq.heappop(self._later)[2]()


# -- the run and its accounting -----------------------------------------------------------


@attrs.define
class Run:
    results: dict[str, BatchResult]
    escaped: list[BaseException]
    seconds: float
    raised: list[BaseException]  # what the SDK raised during this run


async def run_once(client: RecordingClient, requests: list[VideoRequest], folder: Path) -> Run:
    already = len(client.raised)
    results: dict[str, BatchResult] = {}
    escaped: list[BaseException] = []
    started = time.perf_counter()
    try:
        with anyio.fail_after(120):
            async with run_batch(
                client,
                requests,
                journal=folder / "journal.sqlite",
                download_dir=folder / "videos",
                max_in_flight=200,
            ) as run:
                async for result in run:
                    assert result.key not in results, f"two results for {result.key}"
                    results[result.key] = result
    except Exception as exc:  # counted (must be none): the table reports it
        escaped.append(exc)
    return Run(results, escaped, time.perf_counter() - started, client.raised[already:])


@attrs.define
class Table:
    """The figures of docs/reliability.md, for one run."""

    rows: dict[str, Any] = attrs.Factory(dict)

    def show(self, title: str) -> str:
        width = max(map(len, self.rows))
        lines = [title, "-" * len(title)]
        lines += [f"{name:<{width}}  {value}" for name, value in self.rows.items()]
        return "\n".join(lines)


def account(
    run: Run,
    requests: list[VideoRequest],
    fake: FakeStarVideos,
    folder: Path,
    proxy: ChaosProxy,
) -> Table:
    """Check every invariant of one run against what the fake saw; the figures."""
    key_of = {r.prompt: str(r.key) for r in requests}
    created: dict[str, list[str]] = {}  # key -> task ids the service created for it
    for rec in fake.requests:
        if rec.endpoint == "create" and rec.task_id is not None:
            created.setdefault(key_of[rec.json["prompt"]], []).append(rec.task_id)
    results = run.results
    unknown = {k for k, r in results.items() if r.status == "unknown"}
    # An id is lost when the service created the task and the batch does not hold it,
    # unless no answer carrying the complete id ever reached the client.
    lost = [
        (key, ids)
        for key, ids in created.items()
        if (key not in unknown or ids[0] in named_by(fake, proxy))
        and (key not in results or results[key].task_id != ids[0])
    ]
    duplicates = {key: ids for key, ids in created.items() if len(ids) > 1}
    clear = [
        r
        for r in results.values()
        if r.status in ("completed", "failed", "cancelled")
        or (r.status in ("unknown", "error") and r.error)
    ]
    completed = [r for r in results.values() if r.status == "completed"]
    identical = [
        r
        for r in completed
        if r.path is not None
        and r.task_id is not None
        and r.path.parent == folder / "videos"
        and r.path.read_bytes() == fake.video_bytes(r.task_id)
    ]
    leftovers = [n for n in os.listdir(folder / "videos") if n.startswith(".")]
    foreign = [e for e in run.raised if not isinstance(e, StarVideosError)]
    foreign += [e for e in run.escaped if not isinstance(e, StarVideosError)]
    unknown_not_created = len(unknown - created.keys())
    keyed = [e for e in run.raised if any(KEY in text for text in texts_of(e))]
    malformed = ("unexpected response", "expected a JSON object")  # a broken 2xx answer
    broken_waits = [
        r
        for r in results.values()
        if r.status == "error" and r.error and any(m in r.error for m in malformed)
    ]
    refused = [k for k, r in results.items() if k not in created and r.status == "error"]
    table = Table(
        {
            "tasks requested": len(requests),
            "created on the service": len(created),
            "reported unknown (created / not)": (
                f"{len(unknown)} ({len(unknown & created.keys())} / {unknown_not_created})"
            ),
            "creates surely refused (sent again next run)": len(refused),
            "requested - created - unknown - refused": (
                len(requests) - len(created) - unknown_not_created - len(refused)
            ),
            "results by status": dict(sorted(Counter(r.status for r in results.values()).items())),
            "ids lost": len(lost),
            "duplicate creates": len(duplicates),
            "ended with a clear status or typed error": f"{len(clear)} of {len(requests)}",
            "waits ended by one broken status answer": len(broken_waits),
            "files on disk byte-identical": f"{len(identical)} of {len(completed)} completed",
            "temporary files left": len(leftovers),
            "tasks named by a broken create answer": f"{len(named_by(fake, proxy))}, none lost",
            "SDK errors raised and searched for the key": len(run.raised),
            "errors with the key reachable (chain, attributes, frame locals)": len(keyed),
            "exceptions outside the SDK's hierarchy": len(foreign),
            "run time": f"{run.seconds:.1f} s",
        }
    )
    assert run.escaped == [], run.escaped
    assert set(results) == set(key_of.values()), "a request got no result"
    assert len(requests) == len(created) + unknown_not_created + len(refused)
    assert lost == [], f"task ids lost: {lost[:5]}"
    assert duplicates == {}, f"created twice: {list(duplicates.items())[:5]}"
    assert len(clear) == len(requests)
    assert len(identical) == len(completed)
    assert leftovers == []
    assert foreign == []
    assert keyed == []
    assert broken_waits == []
    return table


def named_by(fake: FakeStarVideos, proxy: ChaosProxy) -> set[str]:
    """The ids of tasks whose create answer broke after naming them in full.

    Cut JSON and wrong types send the whole id; a connection dropped after ``nbytes``
    sent it when the id's closing quote came before the cut; unless the proxy cut that
    answer earlier still.
    """
    named = set()
    for rec in fake.requests:
        if rec.endpoint != "create" or rec.task_id is None or rec.fault is None:
            continue
        fault = rec.fault
        if fault.when == "after" and fault.kind in ("malformed_json", "wrong_types"):
            named.add(rec.task_id)
        elif fault.kind == "drop_after":
            prefix = f'{{"id": "{rec.task_id}"'
            if fault.nbytes >= len(prefix):
                named.add(rec.task_id)
    return named - proxy.cut_ids


@pytest.mark.slow
async def test_a_1000_task_batch_under_mixed_faults_loses_and_duplicates_nothing(
    guard: Guard, tmp_path: Path, closed_port: int
) -> None:
    requests = [
        VideoRequest(
            f"chaos {i}: a paper boat on a rainy street", duration=3 + i % 13, key=f"req-{i:04}"
        )
        for i in range(N)
    ]
    random.seed(SEED)  # the retry jitter
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with FakeStarVideos(**fake_options()) as fake:
            arm_faults(fake)
            proxy = ChaosProxy.random(fake.port, PROXY)
            await proxy.start()
            resolver = RefusingResolver(proxy.port, closed_port, REFUSED)
            connector = aiohttp.TCPConnector(
                force_close=True, limit=100, resolver=resolver, use_dns_cache=False
            )
            try:
                async with aiohttp.ClientSession(connector=connector) as session:
                    client = RecordingClient(
                        api_key=fake.api_key,
                        base_url=f"http://localhost:{proxy.port}/kyyReactApiServer",
                        session=session,
                        raised=guard.raised,
                        **client_options(max_concurrency=64),
                    )
                    async with client:
                        anomalies = Anomalies(fake)
                        stop = anyio.Event()
                        async with anyio.create_task_group() as group:
                            group.start_soon(anomalies.run, stop)
                            first = await run_once(client, requests, tmp_path)
                            stop.set()
                        table = account(first, requests, fake, tmp_path, proxy)
                        faults = Counter(
                            f"{r.endpoint}: {r.fault.kind}" for r in fake.requests if r.fault
                        )
                        _report("run 1: 1,000 tasks under mixed faults", table)
                        modes = proxy.modes + Counter({"refused": resolver.refused})
                        _report_faults(faults, modes, anomalies.done)

                        fake.clear_faults()
                        proxy.choose = lambda: "pass"
                        resolver.share = 0.0
                        second = await run_once(client, requests, tmp_path)
                        table = account(second, requests, fake, tmp_path, proxy)
                        _report("run 2: the same journal, resumed without faults", table)
            finally:
                await proxy.close()
        gc.collect()
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    current = asyncio.current_task()
    running = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    _report_line("unclosed resources", f"{len(unclosed)} warnings, {len(running)} tasks left")
    assert unclosed == []
    assert running == []
    assert [w for w in caught if not issubclass(w.category, ResourceWarning)] == []
    # the resume finished what faults had interrupted, and sent no unknown create again
    assert first.results.keys() == second.results.keys()
    for key, result in second.results.items():
        if first.results[key].status == "unknown":
            assert result.status == "unknown"
        assert result.status != "error" or result.task_id is not None, "a create was refused"
    assert sum(r.status == "completed" for r in second.results.values()) >= sum(
        r.status == "completed" for r in first.results.values()
    )


def _report(title: str, table: Table) -> None:
    print("\n" + table.show(title))  # noqa: T201 - the table is the output (pytest -s)


def _report_faults(faults: Counter[str], modes: Counter[str], anomalies: Counter[str]) -> None:
    lines = ["faults that struck:"]
    lines += [f"  {name}: {count}" for name, count in sorted(faults.items())]
    lines += [f"  connection {mode}: {count}" for mode, count in sorted(modes.items())]
    lines += [f"  task {name}: {count}" for name, count in sorted(anomalies.items())]
    print("\n".join(lines))  # noqa: T201 - part of the table


def _report_line(name: str, value: str) -> None:
    print(f"{name}: {value}")  # noqa: T201 - part of the table


async def test_one_poisoned_status_answer_is_retried_and_the_batch_completes(
    chaos_fake: FakeStarVideos, chaos_client: RecordingClient, tmp_path: Path
) -> None:
    """Whatever one status answer holds (here 100 KB of nested JSON), it is retried like
    any glitch of an idempotent call: all 20 complete, downloaded."""
    deep = b"[" * 100_000 + b"]" * 100_000
    poison = Fault.status(200, deep, content_type="application/json")
    injected = chaos_fake.inject(poison, "status", times=1)
    requests = [VideoRequest(f"poison {i}: a moth near a lamp", key=f"p-{i}") for i in range(20)]
    async with run_batch(
        chaos_client,
        requests,
        journal=tmp_path / "journal.sqlite",
        download_dir=tmp_path / "videos",
    ) as run:
        results = [result async for result in run]
    assert injected.fired == 1
    assert [r.status for r in results] == ["completed"] * 20
    assert all(r.path is not None and r.path.is_file() for r in results)
