"""Test helpers: a fake StarVideos service to run your code against.

:class:`FakeStarVideos` is a real aiohttp.web server on 127.0.0.1 that speaks the
documented API (create, query, and a separate file host for the videos), with
deterministic task timelines, manual control over every task, and fault injection.
Point the SDK (or any HTTP client) at it instead of mocking::

    from starvideos_async import PollPolicy
    from starvideos_async.testing import Fault, FakeStarVideos

    async def test_survives_a_gateway_error():
        async with FakeStarVideos(time_scale=0.001) as fake:  # a task takes 30 ms
            fake.inject(Fault.html(502), endpoint="status")
            async with fake.client(poll_policy=PollPolicy.fixed(0.01)) as client:
                task = await client.submit("a red kite over the sea")
                video = await task.wait()
            assert video.video_url is not None
            assert fake.created == 1

With pytest and pytest-asyncio, the ``fake_starvideos`` fixture (installed with this
package) gives a started fake with a fast clock, in pytest-asyncio's strict and auto
modes alike (a test using it needs no ``@pytest.mark.asyncio``); override the
``fake_starvideos_options`` fixture to pass it other arguments::

    @pytest.fixture
    def fake_starvideos_options():
        return {"failure_rate": 0.5, "seed": 7}

    async def test_something(fake_starvideos):
        async with fake_starvideos.client(poll_policy=PollPolicy.fixed(0.01)) as client:
            ...

The fake speeds up the service, not your client: give the client a short poll interval
(the default follows the docs' advice of tens of seconds).

What to know:

- ``time_scale`` is real seconds per simulated second; statuses are computed from the
  clock on each query, so a fake holds 100,000 tasks cheaply. ``auto_advance=False``
  stops the clock; :meth:`FakeStarVideos.advance` moves it by hand.
- Manual control: :meth:`~FakeStarVideos.complete`, :meth:`~FakeStarVideos.fail`,
  :meth:`~FakeStarVideos.set_status`, :meth:`~FakeStarVideos.set_fields`,
  :meth:`~FakeStarVideos.omit_fields`, :meth:`~FakeStarVideos.hold`,
  :meth:`~FakeStarVideos.remove`, :meth:`~FakeStarVideos.expire`.
- Faults: :meth:`FakeStarVideos.inject` arms a :class:`Fault` (``status``,
  ``rate_limit``, ``html``, ``error_payload``, ``empty_body``, ``malformed_json``,
  ``wrong_types``, ``delay``, ``drop_connection``, ``drop_after``). On create,
  ``when="after"`` creates the task before misbehaving: check ``fake.created`` to prove a
  create was never sent twice.
- Observation: :attr:`FakeStarVideos.requests` (:class:`RecordedRequest`, with a
  case-insensitive copy of the headers), ``counters``, ``created``, ``max_in_flight``,
  :meth:`FakeStarVideos.max_calls_in_window`, :meth:`FakeStarVideos.video_bytes`.
- The file host is another origin and refuses requests carrying ``Authorization``
  (400, as presigned-URL hosts do), so a leaked API key fails loudly.

Retries wait (with backoff) before each new attempt; in tests,
``with instant_retries() as waits:`` retries at once and records the waits skipped::

    from starvideos_async.testing import Fault, instant_retries

    async def test_a_flaky_gateway_is_retried(fake_starvideos):
        fake_starvideos.inject(Fault.status(503), endpoint="status", times=2)
        with instant_retries() as waits:
            async with fake_starvideos.client() as client:
                await client.retrieve(fake_starvideos.create_task().id)
        assert len(waits) == 2

If you mock aiohttp with aioresponses instead: aioresponses 0.7.9 and older fail with
aiohttp 3.14+ (``ClientResponse.__init__() missing ... 'stream_writer'``); this fake
needs no patching.
"""

from __future__ import annotations

import typing as _typing

if _typing.TYPE_CHECKING:
    from ._faults import Fault, InjectedFault
    from ._server import FakeStarVideos, FakeTask, RecordedRequest

from starvideos_async._retry import instant_retries

__all__ = [
    "FakeStarVideos",
    "FakeTask",
    "Fault",
    "InjectedFault",
    "RecordedRequest",
    "instant_retries",
]


# The names are imported on first use: pytest loads this package's plugin (``_plugin``)
# at startup, and the server (aiohttp.web and all) should come only with a test using it.
def __getattr__(name: str) -> object:
    if name in ("Fault", "InjectedFault"):
        from . import _faults as home
    elif name in ("FakeStarVideos", "FakeTask", "RecordedRequest"):
        from . import _server as home  # type: ignore[no-redef]
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(home, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
