"""Cancelling or closing at the wrong moment never drops a paid task or leaks a foreign error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from starvideos_async import (
    AsyncStarVideos,
    ClientClosedError,
    PollPolicy,
    ServerError,
    StarVideosError,
    SubmitManyError,
    Video,
    VideoRequest,
)
from starvideos_async.testing import FakeStarVideos, Fault


@pytest.fixture
async def fake() -> AsyncIterator[FakeStarVideos]:
    async with FakeStarVideos(time_scale=0.001) as service:
        yield service


async def test_cancelled_submit_keeps_the_task_the_service_created(
    fake: FakeStarVideos, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(Fault.delay(0.2, when="after"), "create")
    client = fake.client()
    submit = asyncio.ensure_future(client.submit("a fox"))
    while fake.created == 0:
        await asyncio.sleep(0.005)
    submit.cancel()  # the create is on the wire: the task exists already
    with pytest.raises(asyncio.CancelledError):
        await submit
    with caplog.at_level(logging.WARNING, logger="starvideos_async"):
        await client.aclose()  # lets the answer arrive
    (task,) = client.orphaned_tasks
    (task_id,) = fake.tasks
    assert task.id == task_id
    assert task_id in caplog.text


class SlowCreate:
    """A create endpoint on 127.0.0.1: takes the request, waits for ``answer_now``, then
    answers with ``status`` and a JSON error, or (``head`` given) streams a 2xx answer
    beginning with ``head`` and never ending."""

    def __init__(self, *, head: bytes = b"", status: int = 200) -> None:
        self.head = head
        self.status = status
        self.arrived = asyncio.Event()
        self.answer_now = asyncio.Event()

    async def create(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.arrived.set()
        await self.answer_now.wait()
        if not self.head:
            return web.json_response({"error": {"message": "upstream"}}, status=self.status)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            await resp.write(self.head)
            while True:  # until the client hangs up
                await resp.write(b"x" * 65536)
        except (ConnectionError, RuntimeError):
            pass
        return resp


async def cancel_on_the_wire(
    service: SlowCreate, api_key: str, caplog: pytest.LogCaptureFixture, **options: Any
) -> AsyncStarVideos:
    """``submit()`` to ``service``, cancelled once its create is on the wire; then the
    answer is let come and the client closed. The (closed) client, for its orphans."""
    app = web.Application()
    app.router.add_post("/api/v1/starvideos/videos", service.create)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client = AsyncStarVideos(api_key, base_url=str(server.make_url("/api")), **options)
        submit = asyncio.ensure_future(client.submit("a fox"))
        await service.arrived.wait()
        submit.cancel()  # the create is on the wire
        with pytest.raises(asyncio.CancelledError):
            await submit
        service.answer_now.set()
        with caplog.at_level(logging.WARNING, logger="starvideos_async"):
            await client.aclose()  # lets the answer arrive
    finally:
        await server.close()
    return client


@pytest.mark.parametrize(
    ("head", "kept"),
    [
        (b'{"id": "video_starvideos_9", "status": "queued", "pad": "', ["video_starvideos_9"]),
        (b'{"status": "queued", "pad": "', []),
    ],
    ids=["named before the limit", "not named"],
)
async def test_a_cancelled_submit_whose_answer_is_too_long_keeps_the_task_or_warns(
    api_key: str, head: bytes, kept: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    client = await cancel_on_the_wire(
        SlowCreate(head=head), api_key, caplog, max_response_bytes=1000
    )
    assert [task.id for task in client.orphaned_tasks] == kept
    if kept:
        assert f"created task {kept[0]}" in caplog.text
    else:  # the task may exist: no id to keep, but it is said
        assert "a cancelled submit() may have created a task (outcome unknown)" in caplog.text
        assert "exceeds the 1000-byte limit" in caplog.text


async def test_submit_many_cut_short_by_a_timeout_loses_no_created_id(
    fake: FakeStarVideos,
) -> None:
    fake.inject(Fault.delay(0.1, when="after"), "create", times=None)
    client = fake.client(max_concurrency=4)
    requests = [VideoRequest(prompt=f"p{i}") for i in range(40)]
    # asyncio.TimeoutError: on 3.10 wait_for's is not the builtin TimeoutError (3.11+ alias)
    with pytest.raises(asyncio.TimeoutError):  # halfway through the third round of creates
        await asyncio.wait_for(client.submit_many(requests), 0.25)
    on_the_wire = fake.created  # the fake counts a create when it arrives
    await client.aclose()  # lets the creates on the wire land
    assert 0 < on_the_wire < len(requests)
    assert fake.created == on_the_wire  # none sent after the caller stopped
    assert {t.id for t in client.orphaned_tasks} == set(fake.tasks)


class BuggyLimiter:
    """Two slots, like the default limiter of ``max_concurrency=2``; entry ``bug_at`` raises."""

    def __init__(self, bug_at: int) -> None:
        self.slots = asyncio.Semaphore(2)
        self.entries = 0
        self.bug_at = bug_at

    async def __aenter__(self) -> None:
        self.entries += 1
        if self.entries == self.bug_at:
            raise RuntimeError("a bug")
        await self.slots.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.slots.release()


async def test_a_bug_in_submit_many_surfaces_as_itself_and_keeps_the_created_tasks(
    fake: FakeStarVideos,
) -> None:
    # A create is sent only once it holds a slot: the fifth create is never sent.
    async with fake.client(max_concurrency=2, limiter=BuggyLimiter(bug_at=5)) as client:
        with pytest.raises(RuntimeError, match="a bug"):
            await client.submit_many([VideoRequest(prompt=f"p{i}") for i in range(10)])
    assert fake.created == 4  # the other worker ends its create, starts none
    assert {t.id for t in client.orphaned_tasks} == set(fake.tasks)


async def test_a_stopped_submit_many_does_not_send_creates_queued_for_a_slot(
    fake: FakeStarVideos,
) -> None:
    fake.inject(Fault.delay(0.2), "status", times=None)
    client = fake.client(max_concurrency=2)
    task = fake.create_task()
    busy = [asyncio.ensure_future(client.retrieve(task.id)) for _ in range(2)]
    while fake.counters["status"] < 2:  # both slots held by status calls
        await asyncio.sleep(0.005)
    submit = asyncio.ensure_future(
        client.submit_many([VideoRequest(prompt=f"p{i}") for i in range(5)])
    )
    await asyncio.sleep(0.02)  # its workers queue for a slot
    submit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await submit
    await asyncio.gather(*busy)  # the slots free up
    await client.aclose()
    assert fake.created == 1  # only the test's own task: no create went out
    assert client.orphaned_tasks == []


async def test_a_cancelled_submit_does_not_send_a_create_queued_for_a_slot(
    fake: FakeStarVideos,
) -> None:
    fake.inject(Fault.delay(0.2), "status", times=None)
    client = fake.client(max_concurrency=1)
    task = fake.create_task()
    busy = asyncio.ensure_future(client.retrieve(task.id))
    while fake.counters["status"] < 1:  # the only slot held by a status call
        await asyncio.sleep(0.005)
    submit = asyncio.ensure_future(client.submit("queued for the slot"))
    await asyncio.sleep(0.02)
    submit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await submit
    await busy  # the slot frees up
    await client.aclose()
    assert fake.created == 1  # only the test's own task: the create never went out
    assert client.orphaned_tasks == []


async def test_closing_the_client_under_queued_requests_raises_only_sdk_errors(
    fake: FakeStarVideos,
) -> None:
    fake.inject(Fault.delay(0.1), "status", times=None)
    client = fake.client(max_concurrency=1)
    task = fake.create_task()
    calls = [asyncio.ensure_future(client.retrieve(task.id)) for _ in range(3)]
    await asyncio.sleep(0.03)  # one on the wire, two waiting for the only slot
    await client.aclose()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, (Video, StarVideosError)) for o in outcomes), outcomes
    assert any(isinstance(o, ClientClosedError) for o in outcomes)


async def test_submit_many_during_aclose_reports_every_created_task(
    fake: FakeStarVideos,
) -> None:
    fake.inject(Fault.delay(0.02, when="after"), "create", times=None)
    client = fake.client(max_concurrency=2)
    submit = asyncio.ensure_future(
        client.submit_many([VideoRequest(prompt=f"p{i}") for i in range(20)])
    )
    while fake.created < 4:
        await asyncio.sleep(0.005)
    await client.aclose()
    with pytest.raises(SubmitManyError) as info:
        await submit
    assert {t.id for t in info.value.tasks} == set(fake.tasks)
    assert all(isinstance(e, ClientClosedError) for e in info.value.errors.values())


async def test_generate_names_the_task_when_its_wait_is_cancelled(
    fake: FakeStarVideos, caplog: pytest.LogCaptureFixture
) -> None:
    fake.auto_advance = False  # never finishes
    async with fake.client(poll_policy=PollPolicy.fixed(0.01)) as client:
        with (
            caplog.at_level(logging.WARNING, logger="starvideos_async"),
            pytest.raises(asyncio.TimeoutError),  # not TimeoutError on 3.10
        ):
            await asyncio.wait_for(client.generate("a fox"), 0.1)
    (task_id,) = fake.tasks
    assert f"task {task_id} still runs" in caplog.text


async def test_a_custom_fetchers_own_transient_error_is_retried(fake: FakeStarVideos) -> None:
    failures = iter([OSError("database connection reset")])

    async with fake.client(poll_policy=PollPolicy.fixed(0.005)) as client:

        async def from_database(task_id: str) -> Video:
            error = next(failures, None)
            if error is not None:
                raise error
            return await client.retrieve(task_id)

        task = await client.submit("a fox")
        video = await task.wait(status_fetcher=from_database, timeout=10)
    assert video.is_completed


async def test_a_custom_fetcher_error_surfaces_as_itself_after_the_retries(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    async def broken(task_id: str) -> Video:
        raise OSError("database is down")

    async with fake.client(poll_policy=PollPolicy.fixed(0.005), max_retries=1) as client:
        task = client.task(fake.create_task().id)
        with pytest.raises(OSError, match="database is down"):
            await task.wait(status_fetcher=broken, timeout=10)
    assert len(sleeps) == 1  # after its one retry


async def test_a_huge_gateway_error_page_stays_a_retryable_server_error(
    fake: FakeStarVideos, sleeps: list[float]
) -> None:
    page = b"<html><title>502 Bad Gateway</title>" + b"x" * 2_000_000 + b"</html>"
    fake.inject(Fault.status(502, body=page, content_type="text/html"), "status", times=5)
    async with fake.client(max_response_bytes=1024 * 1024, max_retries=1) as client:
        task = fake.create_task()
        with pytest.raises(ServerError) as info:
            await client.retrieve(task.id)
    assert info.value.status_code == 502
    assert "502 Bad Gateway" in str(info.value)
    assert fake.counters["status"] == 2  # retried once, as a 5xx should be


async def test_client_used_with_a_closed_session_gives_a_clear_error() -> None:
    async with FakeStarVideos() as fake:
        client = fake.client()
        await client.aclose()
        with pytest.raises(ClientClosedError):
            await client.submit("a fox")
        assert isinstance(client, AsyncStarVideos)


@pytest.mark.parametrize(("status", "warned"), [(503, True), (500, True), (400, False)])
async def test_a_cancelled_submit_answered_with_an_error_says_whether_a_task_may_exist(
    api_key: str, status: int, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    client = await cancel_on_the_wire(SlowCreate(status=status), api_key, caplog)
    assert client.orphaned_tasks == []
    said = "a cancelled submit() may have created a task (outcome unknown)" in caplog.text
    assert said is warned  # a 5xx leaves the outcome unknown; a 400 created nothing
