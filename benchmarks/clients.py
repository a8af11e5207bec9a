"""One benchmark client run, in a fresh process: ``python benchmarks/clients.py SPEC_JSON``.

``run.py`` starts this once per measurement and reads one JSON line of results from
stdout. The spec says which workload and which client:

- ``throughput``: ``kind`` is ``sdk``, ``aiohttp`` (a hand-written loop, our physical
  limit) or ``httpx`` (the same loop on httpx); ``sdk-per-task`` and ``sdk-direct``
  (the transport without the scheduler) split the SDK's cost. N tasks, each one create
  then status queries until a terminal status (the per-poll fake makes that exactly
  three), at ``concurrency`` requests in flight.
- ``polling``: the SDK with one poll policy (``default``, ``fixed:SECONDS``), every
  time parameter multiplied by ``scale``; tasks submitted at a steady pace, each awaited
  with ``task.wait()``; the moment each wait returns.
- ``scale``: the SDK awaiting every given task id at once (``wait_all``) under a
  status-rate cap; RSS sampled while they are awaited. ``"gc"``: ``"on"`` (default),
  ``"off"`` (collector disabled during the waits) or ``"freeze"`` (``gc.freeze()`` once
  every wait has started); ``"steps": true`` times each event-loop step (below).
- ``shared``: one of N processes, each ``submit_many`` then ``wait_all`` of its own
  tasks, with a ``RedisCoordinator`` when the spec has a ``redis_url``; all start at
  ``start_at``.

Timing: ``resource.getrusage`` (user + system CPU of this process) and
``time.perf_counter`` around the workload only, after imports. ``ru_maxrss`` is the peak
RSS of the whole process. A ``"profile"`` of ``"cprofile:PATH"`` (CPU time) or
``"pyinstrument:PATH"`` in the spec profiles the workload (throughput and scale).
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import json
import math
import resource
import sys
import time
from array import array
from typing import Any

# The throughput body, the same for every client: the SDK's defaults made explicit.
BODY = {"prompt": "a red kite over the sea, slow pan", "model": "starvideos_v3"}
TERMINAL = frozenset({"completed", "failed", "cancelled"})


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_bytes() -> int:
    # Linux reports kilobytes, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


# -- throughput: three clients ---------------------------------------------------------


async def aiohttp_loop(spec: dict[str, Any]) -> int:
    """The hand-written aiohttp loop: what a careful user writes without an SDK."""
    import aiohttp

    base, n, concurrency = spec["base_url"], spec["tasks"], spec["concurrency"]
    headers = {"Authorization": f"Bearer {spec['api_key']}"}
    create_url = f"{base}/v1/starvideos/videos"
    result_url = f"{base}/v1/result/"
    requests = 0
    pending = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal requests
            for _ in pending:
                async with session.post(create_url, json=BODY) as response:
                    response.raise_for_status()
                    task = json.loads(await response.read())
                requests += 1
                status = task["status"]
                while status not in TERMINAL:
                    async with session.get(result_url + task["id"]) as response:
                        response.raise_for_status()
                        status = json.loads(await response.read())["status"]
                    requests += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests


async def httpx_loop(spec: dict[str, Any]) -> int:
    """The same loop on httpx."""
    import httpx

    base, n, concurrency = spec["base_url"], spec["tasks"], spec["concurrency"]
    headers = {"Authorization": f"Bearer {spec['api_key']}"}
    create_url = f"{base}/v1/starvideos/videos"
    result_url = f"{base}/v1/result/"
    requests = 0
    pending = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60.0) as client:

        async def worker() -> None:
            nonlocal requests
            for _ in pending:
                response = await client.post(create_url, json=BODY)
                response.raise_for_status()
                task = response.json()
                requests += 1
                status = task["status"]
                while status not in TERMINAL:
                    response = await client.get(result_url + task["id"])
                    response.raise_for_status()
                    status = response.json()["status"]
                    requests += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests


def _no_delay_policy() -> Any:
    from starvideos_async import PollPolicy

    class NoDelay(PollPolicy):
        """Poll again at once: ``fixed()`` refuses 0, a subclass may return it."""

        def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
            return 0.0

    return NoDelay()


async def sdk_batch(spec: dict[str, Any]) -> int:
    """The SDK as the docs show it for a batch: ``submit_many`` then ``wait_all``."""
    from starvideos_async import AsyncStarVideos, VideoRequest

    n, concurrency = spec["tasks"], spec["concurrency"]
    async with AsyncStarVideos(
        api_key=spec["api_key"],
        base_url=spec["base_url"],
        max_concurrency=concurrency,
        poll_policy=_no_delay_policy(),
    ) as client:
        requests = [VideoRequest(prompt=BODY["prompt"]) for _ in range(n)]
        tasks = await client.submit_many(requests)
        videos = await client.wait_all(tasks)
        assert len(videos) == n
        assert all(v.video_url for v in videos)
        status_calls = getattr(client._scheduler, "status_calls", 0)
    return n + status_calls


async def sdk_per_task(spec: dict[str, Any]) -> int:
    """The SDK one task at a time per worker: ``submit`` then ``wait`` (64 workers)."""
    from starvideos_async import AsyncStarVideos

    n, concurrency = spec["tasks"], spec["concurrency"]
    pending = iter(range(n))
    async with AsyncStarVideos(
        api_key=spec["api_key"],
        base_url=spec["base_url"],
        max_concurrency=concurrency,
        poll_policy=_no_delay_policy(),
    ) as client:

        async def worker() -> None:
            for _ in pending:
                task = await client.submit(BODY["prompt"])
                await task.wait()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        status_calls = getattr(client._scheduler, "status_calls", 0)
    return n + status_calls


async def sdk_direct(spec: dict[str, Any]) -> int:
    """The SDK's transport without its scheduler: ``submit`` then ``retrieve`` in a loop.

    Not how to use the SDK (``wait()`` is); it splits the SDK's cost between the HTTP
    transport and the scheduler.
    """
    from starvideos_async import AsyncStarVideos

    n, concurrency = spec["tasks"], spec["concurrency"]
    pending = iter(range(n))
    requests = 0
    async with AsyncStarVideos(
        api_key=spec["api_key"], base_url=spec["base_url"], max_concurrency=concurrency
    ) as client:

        async def worker() -> None:
            nonlocal requests
            for _ in pending:
                task = await client.submit(BODY["prompt"])
                video = task.latest
                requests += 1
                while video is None or not video.is_terminal:
                    video = await client.retrieve(task.id)
                    requests += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests


THROUGHPUT = {
    "sdk": sdk_batch,
    "sdk-per-task": sdk_per_task,
    "sdk-direct": sdk_direct,
    "aiohttp": aiohttp_loop,
    "httpx": httpx_loop,
}


# -- polling efficiency --------------------------------------------------------------


#: AdaptivePollPolicy arguments in seconds (scaled), and the others (shares, counts).
TIME_PARAMS = frozenset({"interval", "first_poll", "min_interval", "max_interval", "call_cost"})
OTHER_PARAMS = frozenset({"calls_per_task", "jitter", "memory", "min_samples"})


def scaled_policy(name: str, scale: float) -> Any:
    """A poll policy with every time parameter multiplied by ``scale``.

    ``default`` copies whatever ``PollPolicy.default()`` holds today, so the benchmark
    follows changes to the defaults; only the time parameters are scaled (``jitter``,
    ``calls_per_task`` and sample counts are shares and counts).
    """
    from starvideos_async import AdaptivePollPolicy, PollPolicy

    if name.startswith("fixed:"):
        return PollPolicy.fixed(float(name.partition(":")[2]) * scale)
    if name != "default":
        raise ValueError(f"unknown policy {name!r}")
    default = PollPolicy.default()
    if not isinstance(default, AdaptivePollPolicy):
        raise TypeError(f"PollPolicy.default() is a {type(default).__name__}: teach me")
    import inspect

    kwargs: dict[str, Any] = {}
    for param in inspect.signature(AdaptivePollPolicy).parameters:
        if param == "seed":
            continue
        if param not in TIME_PARAMS | OTHER_PARAMS:
            raise TypeError(f"AdaptivePollPolicy({param}=...) is new: is it in seconds?")
        value = getattr(default, param)  # None: not set (e.g. call_cost)
        kwargs[param] = value * scale if param in TIME_PARAMS and value is not None else value
    return AdaptivePollPolicy(seed=7, **kwargs)


async def polling(spec: dict[str, Any]) -> dict[str, Any]:
    from starvideos_async import AsyncStarVideos

    n, gap = spec["tasks"], spec["gap"]
    policy = scaled_policy(spec["policy"], spec["scale"])
    returned: dict[str, float] = {}
    ids: list[str] = [""] * n  # in arrival order
    async with AsyncStarVideos(
        api_key=spec["api_key"],
        base_url=spec["base_url"],
        max_concurrency=spec["concurrency"],
        poll_policy=policy,
        timeout=60.0,
    ) as client:

        async def one(index: int) -> None:
            task = await client.submit(BODY["prompt"])
            ids[index] = task.id
            await task.wait()
            returned[task.id] = time.monotonic()

        loop = asyncio.get_running_loop()
        start = loop.time()
        waits = []
        for i in range(n):
            delay = start + i * gap - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            waits.append(asyncio.ensure_future(one(i)))
        await asyncio.gather(*waits)
    return {"returned": returned, "ids": ids}


# -- scale -----------------------------------------------------------------------------


def after_first_pass_policy(tasks: int, rate: float | None) -> Any:
    """Polls each task a second time just after the first pass over all ``tasks``.

    The first pass goes at most at ``rate`` calls/s (the cap; ``None``: none), slower if
    the client cannot keep up: each answer re-estimates when the pass will end from the
    pace so far (before there is enough of it, the cap, or a guess without one). The
    fake releases the tasks at the end of the first pass, so a wait takes two status
    calls (running, then completed), three for the few tasks answered early while the
    pace was still unknown.
    """
    from starvideos_async import AdaptivePollPolicy

    most = rate or math.inf
    # Without a cap, a guess below what one client manages here (2,600-3,200/s): too
    # low, the second polls come late (still two calls); too high, early (three).
    guess = rate or 1500.0

    class AfterFirstPass(AdaptivePollPolicy):
        """The default policy's learning (every wait counted in flight, every completion
        learnt: its memory and its event-loop time count), with its own delays."""

        def __init__(self) -> None:
            super().__init__()
            self.answered = 0  # first answers so far
            self.started: float | None = None

        def next_delay(self, *, age: float, polls: int, duration: int | None) -> float:
            now = time.monotonic()
            if self.started is None:
                self.started = now
            if polls == 1:
                self.answered += 1
            elapsed = now - self.started
            # The pace so far, once there is enough of it to tell; the guess before that.
            pace = guess if elapsed < 2.0 else min(self.answered / elapsed, most)
            remaining = (tasks - self.answered) / pace
            # A task seen running twice came before the end of the pass: wait again.
            return max(remaining * 1.1 + 2.0, 1.0)

    return AfterFirstPass()


async def scale(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    from starvideos_async import AsyncStarVideos

    ids: list[str] = spec["ids"]
    # Request start times, client side (an aiohttp trace on a session we pass in; the
    # SDK sends exactly as on its own session), to check the rate cap where it applies.
    starts, trace = start_times()
    connector = aiohttp.TCPConnector(limit=max(100, spec["concurrency"]))
    session = aiohttp.ClientSession(connector=connector, trace_configs=[trace])
    async with (
        session,
        AsyncStarVideos(
            session=session,
            api_key=spec["api_key"],
            base_url=spec["base_url"],
            max_concurrency=spec["concurrency"],
            max_status_rate=spec["rate"],
            poll_policy=after_first_pass_policy(len(ids), spec["rate"]),
            timeout=60.0,
        ) as client,
    ):
        await client.retrieve(ids[0])  # the session and its first connection exist
        del starts[:]  # that retrieve does not pass the status gate: not part of the check
        gc.collect()
        baseline = rss_bytes()
        samples: list[int] = []

        async def sample() -> None:
            while True:
                samples.append(rss_bytes())
                await asyncio.sleep(0.25)

        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        sampler = asyncio.ensure_future(sample())
        lateness: list[float] = []
        probe = asyncio.ensure_future(loop_probe(lateness))
        gc_mode = spec.get("gc", "on")
        steps = StepClock() if spec.get("steps") else None
        freezer = None
        try:
            tasks = [client.task(task_id) for task_id in ids]
            if gc_mode == "off":
                gc.disable()
            elif gc_mode == "freeze":
                freezer = asyncio.ensure_future(freeze_when_waiting(client, len(ids)))
            if steps is not None:
                steps.start()
            videos = await client.wait_all(tasks)
        finally:
            if steps is not None:
                steps.stop()
            if freezer is not None:
                freezer.cancel()
            gc.enable()
            gc.unfreeze()
            sampler.cancel()
            probe.cancel()
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        starts_in_window = max_in_window(list(starts), 1.0)
        status_calls = getattr(client._scheduler, "status_calls", 0)
        completed = sum(1 for v in videos if v.is_completed)
    return {
        "wall": wall,
        "cpu": cpu,
        "baseline_rss": baseline,
        "max_sampled_rss": max(samples, default=baseline),
        "peak_rss": peak_rss_bytes(),
        "completed": completed,
        "sdk_status_calls": status_calls,
        "max_starts_in_1s": starts_in_window,
        "probe_late_p99": percentile_of(lateness, 0.99),
        "probe_late_max": max(lateness, default=0.0),
        "probe_samples": len(lateness),
        "gc": gc_mode,
        **(steps.summary() if steps is not None else {}),
    }


async def freeze_when_waiting(client: Any, n: int) -> None:
    """``gc.freeze()`` once all ``n`` waits have started (what an application can do)."""
    while client._scheduler.waiting < n:  # noqa: ASYNC110 - a count, no event to wait on
        await asyncio.sleep(0.05)
    gc.freeze()


class StepClock:
    """Times each step of the event loop (one callback: a task's step, a timer) in CPU
    time of this thread, the garbage collector's passes apart (``gc.callbacks``).

    A step is what holds the loop at once; the probe's lateness also counts a turn of
    the loop that runs many short steps back to back, and time the process was not
    scheduled at all. Steps that began before :meth:`start` (the caller's own, that
    starts the waits) or that ran :meth:`stop` are not counted. Patches
    ``asyncio.events.Handle._run`` while started (CPython's asyncio; not uvloop), which
    costs about a microsecond per step.
    """

    def __init__(self) -> None:
        self.longest = (0.0, "")  # the longest step without its collector time, and what
        self.longest_with_gc = 0.0
        self.collector = 0.0  # collector CPU time so far
        self.longest_pass = 0.0
        self._pass_started = 0.0
        self._run = asyncio.events.Handle._run
        self.on = False

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.thread_time()
        if phase == "start":
            self._pass_started = now
        else:
            self.collector += now - self._pass_started
            self.longest_pass = max(self.longest_pass, now - self._pass_started)

    def start(self) -> None:
        clock, run = self, self._run

        def timed(handle: asyncio.Handle) -> None:
            collector, started = clock.collector, time.thread_time()
            run(handle)
            spent = time.thread_time() - started
            if not clock.on:  # the step that stopped the clock: the caller's code follows
                return
            own = spent - (clock.collector - collector)
            clock.longest_with_gc = max(clock.longest_with_gc, spent)
            if own > clock.longest[0]:
                callback = handle._callback  # type: ignore[attr-defined]
                clock.longest = (own, repr(getattr(callback, "__self__", callback))[:200])

        gc.callbacks.append(self._on_gc)
        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        self.on = True

    def stop(self) -> None:
        self.on = False
        asyncio.events.Handle._run = self._run  # type: ignore[method-assign]
        gc.callbacks.remove(self._on_gc)

    def summary(self) -> dict[str, Any]:
        return {
            "longest_step_cpu": self.longest_with_gc,
            "longest_step_cpu_without_gc": self.longest[0],
            "longest_step_what": self.longest[1],
            "longest_gc_pass_cpu": self.longest_pass,
            "gc_cpu": self.collector,
        }


async def loop_probe(lateness: list[float], period: float = 0.001) -> None:
    """A task that asks to wake every ``period``: how late each wake-up comes.

    What a web backend's other requests feel: a wake-up is late by as long as the event
    loop was busy with something else (here: 100,000 waits).
    """
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(period)
        lateness.append(loop.time() - asked - period)


def percentile_of(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def paced_aiohttp(spec: dict[str, Any]) -> dict[str, Any]:
    """The scale workload's reference: a raw aiohttp loop under the same cap.

    ``calls`` GETs of the given task ids, round robin, started evenly at ``rate`` per
    second (``None``: as fast as they go) by ``concurrency`` workers on one session
    (with the same aiohttp trace as the SDK run). Under a cap, calls come a few at a
    time: each pays turns of the event loop and system calls that a saturated loop
    shares between many, so this is what a status call costs at that pace without an
    SDK.
    """
    import aiohttp

    ids: list[str] = spec["ids"]
    calls, rate = spec["calls"], spec["rate"]
    starts, trace = start_times()
    headers = {"Authorization": f"Bearer {spec['api_key']}"}
    result_url = f"{spec['base_url']}/v1/result/"
    connector = aiohttp.TCPConnector(limit=max(100, spec["concurrency"]))
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, trace_configs=[trace]
    ) as session:
        async with session.get(result_url + ids[0]) as response:  # the first connection
            await response.read()
        loop = asyncio.get_running_loop()
        sent = 0
        due = loop.time()
        spacing = 1 / rate if rate else 0.0
        cpu0, wall0 = cpu_seconds(), time.perf_counter()

        async def worker() -> None:
            nonlocal sent, due
            while sent < calls:
                index = sent
                sent += 1
                now = loop.time()
                slot = max(due, now)
                due = slot + spacing
                if slot > now:
                    await asyncio.sleep(slot - now)
                async with session.get(result_url + ids[index % len(ids)]) as response:
                    response.raise_for_status()
                    json.loads(await response.read())

        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    most = max_in_window(list(starts)[1:], 1.0)  # (the first call opened the connection)
    return {"wall": wall, "cpu": cpu, "calls": calls, "max_starts_in_1s": most}


def start_times() -> tuple[array[float], Any]:
    """An aiohttp trace that records when each request starts, and the record."""
    import aiohttp

    starts: array[float] = array("d")

    async def on_request_start(*_: object) -> None:
        starts.append(time.monotonic())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    return starts, trace


def max_in_window(times: list[float], window: float) -> int:
    """The most ``times`` (sorted) falling in any ``[t, t + window)``."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + window, lo=i) - i)
    return best


# -- main ------------------------------------------------------------------------------


def _install_loop(name: str) -> None:
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _profiled(spec: dict[str, Any], coro_factory: Any) -> Any:
    kind, _, path = spec["profile"].partition(":")
    if kind == "cprofile":
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not wall: machines are shared
        profiler.enable()
        try:
            return asyncio.run(coro_factory())
        finally:
            profiler.disable()
            profiler.dump_stats(path)
    if kind == "pyinstrument":
        import pyinstrument

        profiler = pyinstrument.Profiler(async_mode="disabled", interval=0.0005)
        profiler.start()
        try:
            return asyncio.run(coro_factory())
        finally:
            profiler.stop()
            with open(path, "w", encoding="utf-8") as f:
                f.write(profiler.output_text(unicode=False, show_all=False))
    raise ValueError(f"unknown profiler {kind!r}")


async def shared(spec: dict[str, Any]) -> dict[str, Any]:
    """One of the processes of the shared workload: ``submit_many`` then ``wait_all``.

    With ``redis_url``, the client has a ``RedisCoordinator`` on it (every process on
    the same key shares ``max_concurrency`` and ``max_status_rate``); without, its own
    limits. The workload starts at ``start_at`` (``time.monotonic()``, system-wide), so
    that every process starts together whatever its import time; CPU and wall are
    measured from there to the client's close.
    """
    from starvideos_async import AsyncStarVideos, VideoRequest

    coordinator = None
    if spec.get("redis_url"):
        from starvideos_async.redis import RedisCoordinator

        coordinator = RedisCoordinator(spec["redis_url"])
    n = spec["tasks"]
    requests = [VideoRequest(prompt=BODY["prompt"]) for _ in range(n)]
    late = spec["start_at"] - time.monotonic()
    if late > 0:
        await asyncio.sleep(late)
    cpu0, wall0, started = cpu_seconds(), time.perf_counter(), time.monotonic()
    async with AsyncStarVideos(
        api_key=spec["api_key"],
        base_url=spec["base_url"],
        max_concurrency=spec["concurrency"],
        max_status_rate=spec.get("rate"),
        poll_policy=_no_delay_policy(),
        coordinator=coordinator,
    ) as client:
        tasks = await client.submit_many(requests)
        videos = await client.wait_all(tasks)
        assert len(videos) == n
        assert all(v.video_url for v in videos)
    return {
        "cpu": cpu_seconds() - cpu0,
        "wall": time.perf_counter() - wall0,
        "started": started,
        "ended": time.monotonic(),
        "late": -late,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    _install_loop(spec.get("loop", "asyncio"))
    workload = spec["workload"]
    # Import what the client needs before the clock starts (import time is workload 4).
    kind = spec.get("kind", "sdk")
    __import__("starvideos_async" if kind.startswith("sdk") else kind)
    if workload in ("scale", "paced"):  # the ids are the user's data: loaded before the baseline
        with open(spec.pop("ids_file"), encoding="utf-8") as f:
            spec["ids"] = json.load(f)
    gc.collect()
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    if workload == "throughput":
        run = THROUGHPUT[spec["kind"]]
        if spec.get("profile"):
            requests = _profiled(spec, lambda: run(spec))
        else:
            requests = asyncio.run(run(spec))
        result: dict[str, Any] = {"client_requests": requests}
    elif workload == "polling":
        result = asyncio.run(polling(spec))
    elif workload == "scale":
        if spec.get("profile"):
            result = _profiled(spec, lambda: scale(spec))
        else:
            result = asyncio.run(scale(spec))
    elif workload == "paced":
        result = asyncio.run(paced_aiohttp(spec))
    elif workload == "shared":
        if spec.get("redis_url"):
            __import__("starvideos_async.redis")
        result = asyncio.run(shared(spec))
    else:
        raise ValueError(f"unknown workload {workload!r}")
    result.setdefault("wall", time.perf_counter() - wall0)
    result.setdefault("cpu", cpu_seconds() - cpu0)
    result.setdefault("peak_rss", peak_rss_bytes())
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
