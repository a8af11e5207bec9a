"""The pytest plugin of starvideos-async: the ``fake_starvideos`` fixture.

Registered through the ``pytest11`` entry point, so installing the package is enough.
The fixture needs pytest-asyncio; without it, tests using the fixture are skipped with
a message saying so. The fake service is imported only when the fixture is used.

An ``async def`` test that uses the fixture runs on pytest-asyncio in its default strict
mode too, without ``@pytest.mark.asyncio``: the plugin marks it (the fixture lives on
pytest-asyncio's event loop, so no other runner could serve it). A test marked for
another async runner (``anyio``, ``trio``) is left alone.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from starvideos_async.testing import FakeStarVideos

try:
    import pytest_asyncio

    _HAVE_PYTEST_ASYNCIO = True
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    _HAVE_PYTEST_ASYNCIO = False

__all__ = ["FIXTURE_DEFAULTS", "fake_starvideos_options"]

#: What the fixture passes to ``FakeStarVideos`` unless ``fake_starvideos_options`` says
#: otherwise: a clock 1000 times faster than real time (a task takes 30 ms).
FIXTURE_DEFAULTS: dict[str, Any] = {"time_scale": 0.001}


@pytest.fixture
def fake_starvideos_options() -> dict[str, Any]:
    """Keyword arguments for the ``fake_starvideos`` fixture; override it to change them.

    Returns:
        An empty dict: the fixture's defaults (``time_scale=0.001``) apply.
    """
    return {}


_FIXTURE = "fake_starvideos"
_OTHER_RUNNERS = ("anyio", "trio")


def _mark_for_asyncio(item: object) -> None:
    """Mark an unmarked ``async def`` test using the fixture ``@pytest.mark.asyncio``."""
    if not isinstance(item, pytest.Function) or _FIXTURE not in item.fixturenames:
        return
    if not inspect.iscoroutinefunction(getattr(item, "obj", None)):
        return
    if any(item.get_closest_marker(name) for name in ("asyncio", *_OTHER_RUNNERS)):
        return
    item.add_marker(pytest.mark.asyncio)


if _HAVE_PYTEST_ASYNCIO:
    # Innermost wrapper (trylast): it sees the collected items before pytest-asyncio's
    # wrapper decides, from the marker, which of them it runs.
    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_pycollect_makeitem(
        collector: pytest.Collector, name: str, obj: object
    ) -> Generator[None, Any, None]:
        """Marks async tests that use ``fake_starvideos`` for pytest-asyncio (strict mode)."""
        outcome = yield
        if outcome.excinfo is not None:
            return
        result = outcome.get_result()
        for item in result if isinstance(result, list) else [result]:
            _mark_for_asyncio(item)

    @pytest_asyncio.fixture(name="fake_starvideos")
    async def _fake_starvideos(
        fake_starvideos_options: dict[str, Any],
    ) -> AsyncIterator[FakeStarVideos]:
        """A started fake StarVideos service with a fast clock, closed after the test.

        Args:
            fake_starvideos_options: More ``FakeStarVideos`` arguments.

        Yields:
            The fake; ``fake.client()`` gives an SDK client pointed at it.
        """
        from starvideos_async.testing import FakeStarVideos  # late: keep pytest startup fast

        async with FakeStarVideos(**{**FIXTURE_DEFAULTS, **fake_starvideos_options}) as fake:
            yield fake

else:  # pragma: no cover - exercised only without pytest-asyncio

    @pytest.fixture(name="fake_starvideos")
    def _fake_starvideos_unavailable(fake_starvideos_options: dict[str, Any]) -> None:
        """Skips: the fake service fixture needs pytest-asyncio."""
        pytest.skip("the fake_starvideos fixture needs pytest-asyncio: pip install pytest-asyncio")
