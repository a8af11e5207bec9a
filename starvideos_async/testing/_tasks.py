"""The data of the fake StarVideos service: its tasks, the requests it saw, the rules.

A :class:`FakeTask` is one task: a timeline drawn from the seed at creation (its status
is computed from the clock on each query) plus whatever a test set on it by hand. A
:class:`RecordedRequest` is one request the fake saw; :class:`RequestLog` keeps them, with
the counters, arrival times and in-flight peaks. :func:`_validate` checks a create body
as the docs say. No I/O here: tasks are made and controlled in ``_service``, requests
answered in ``_routes``, videos served by ``_files``, faults described in ``_faults``.
"""

from __future__ import annotations

import bisect
import enum
import hashlib
import heapq
import random
import time
from array import array
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from multidict import CIMultiDict

from ._faults import Endpoint, Fault

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["BASE_PATH", "DurationSampler", "FakeTask", "RecordedRequest", "RequestLog"]

#: The documented path prefix; part of ``FakeStarVideos.base_url``.
BASE_PATH = "/kyyReactApiServer"
#: ``(rng, request_json) -> (queued_seconds, processing_seconds)``, in simulated seconds.
DurationSampler = Callable[[random.Random, Mapping[str, Any]], "tuple[float, float]"]

_MODEL = "starvideos_v3"
_RATIOS = frozenset({"16:9", "9:16"})
_O3 = "starvideos_o3"
_O3_RATIOS = frozenset({"9:16", "1:1", "16:9"})
_O3_FIELDS = ("referenceImages", "first_image", "last_image", "referenceVideos")
_ENDPOINTS: tuple[Endpoint, ...] = ("create", "status", "file", "other")
_FAILURES = (
    "content moderation: the prompt was rejected",
    "generation failed: internal model error",
    "image could not be fetched: the URL is not publicly reachable",
)
_JITTER = tuple(i / 100 for i in range(20))  # actualDuration - duration: 0.00 .. 0.19
_Reply = tuple[int, bytes, object]  # status, body, JSON data (for wrong_types)
#: A valid create body, normalised: ``(prompt, model, duration, ratio, images)``.
_Checked = tuple[str, str, int, str, tuple[str, ...]]


class _Unset(enum.Enum):
    UNSET = enum.auto()


def _digest(kind: str, seed: int, name: object = "") -> bytes:
    """32 bytes derived from ``(kind, seed, name)``: where everything random comes from."""
    return hashlib.blake2b(f"{kind}:{seed}:{name}".encode(), digest_size=32).digest()


@attrs.define(eq=False)
class FakeTask:
    """One task of the fake service; change it through the ``FakeStarVideos`` methods.

    Attributes:
        id: The task id, ``video_starvideos_<digits>``.
        number: Its creation index on this fake (0-based).
        created: Unix seconds at creation (the wire ``created``).
        model: The model requested.
        prompt: The prompt requested.
        duration: The duration requested, or the model's default (v3 5, o3 3; also
            o3's with reference videos, whose length the fake does not know).
        ratio: The ratio requested, or the model's default (v3 ``16:9``, o3 ``9:16``).
        images: The images the service uses: v3's (at most the first 2), or o3's
            reference images or first/last frames.
        request: The JSON body of the create request, as received.
        created_at: The simulated clock at creation.
        queued_seconds: Simulated seconds spent ``queued``.
        processing_seconds: Simulated seconds spent ``processing``.
        fails: Whether the timeline ends in ``failed`` (drawn from ``failure_rate``).
        error_message: The error text it fails with.
        actual_duration: The ``actualDuration`` reported when completed.
        token: The query token of its file URL.
        pinned_status: A status set by hand, overriding the timeline.
        pinned_error: The error text set by ``fail()``.
        held: Never reaches a terminal status on its own while set.
        overrides: Wire fields forced into query answers (``set_fields``).
        omitted: Wire fields left out of query answers (``omit_fields``).
        expired_status: What the file host answers instead of the file (``expire``).
    """

    id: str
    number: int
    created: int
    model: str
    prompt: str
    duration: int
    ratio: str
    images: tuple[str, ...]
    request: dict[str, Any]
    created_at: float
    queued_seconds: float
    processing_seconds: float
    fails: bool
    error_message: str
    actual_duration: float
    token: str
    pinned_status: str | None = None
    pinned_error: str | None = None
    held: bool = False
    overrides: dict[str, Any] = attrs.Factory(dict)
    omitted: tuple[str, ...] = ()
    expired_status: int | None = None

    def status_at(self, sim_now: float) -> str:
        """The wire status at ``sim_now`` (simulated seconds on the fake's clock)."""
        if self.pinned_status is not None:
            return self.pinned_status
        elapsed = sim_now - self.created_at
        if elapsed < self.queued_seconds:
            return "queued"
        if self.held or elapsed < self.queued_seconds + self.processing_seconds:
            return "processing"
        return "failed" if self.fails else "completed"


def _draw_task(
    task_id: str,
    number: int,
    body: dict[str, Any],
    checked: _Checked,
    *,
    seed: int,
    created_at: float,
    fail_below: int,
    timeline: tuple[float, float] | DurationSampler,
) -> FakeTask:
    """A new task; whatever is random in it derives from ``(seed, task_id)``.

    Args:
        task_id: Its id.
        number: Its creation index.
        body: The create request's JSON.
        checked: What :func:`_validate` made of ``body``.
        seed: The fake's seed.
        created_at: The simulated clock now.
        fail_below: It fails when its first 8 digest bytes, as a number, are below.
        timeline: ``(queued, processing)`` seconds, or a sampler that draws them.

    Returns:
        The task (not stored anywhere yet).
    """
    h = _digest("task", seed, task_id)
    if callable(timeline):
        rng = random.Random(int.from_bytes(h[24:], "big"))  # noqa: S311 - test data
        queued, processing = timeline(rng, body)
    else:
        queued, processing = timeline
    prompt, model, duration, ratio, images = checked
    return FakeTask(
        id=task_id,
        number=number,
        created=int(time.time()),
        model=model,
        prompt=prompt,
        duration=duration,
        ratio=ratio,
        images=images,
        request=body,
        created_at=created_at,
        queued_seconds=queued,
        processing_seconds=processing,
        fails=int.from_bytes(h[:8], "big") < fail_below,
        error_message=_FAILURES[h[16] % len(_FAILURES)],
        actual_duration=duration + _JITTER[h[8] % 20],
        token=h[17:25].hex(),
    )


def _urls(payload: Mapping[str, Any], name: str) -> str | list[str]:
    """The array of URL strings ``payload[name]`` (empty when absent), or an error message."""
    value = payload.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        return f"{name} must be an array of URL strings"
    return value


def _validate(payload: object) -> str | _Checked:
    """Check a create body as the docs say: an error message, or the normalised fields."""
    if not isinstance(payload, dict):
        return "the request body must be a JSON object"
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required and must be a non-empty string"
    model = payload.get("model")
    if model == _O3:
        return _validate_o3(payload, prompt)
    if model != _MODEL:
        return f"model must be {_MODEL!r} or {_O3!r}"
    for name in _O3_FIELDS:
        if name in payload:
            return f"{name} is not a field of {_MODEL}"
    duration = payload.get("duration")
    if duration is None:
        duration = 5
    elif type(duration) is not int or not 3 <= duration <= 15:
        return "duration must be an integer between 3 and 15"
    ratio = payload.get("ratio")
    if ratio is None:
        ratio = "16:9"
    elif ratio not in _RATIOS:
        return "ratio must be '16:9' or '9:16'"
    images = _urls(payload, "images")
    if isinstance(images, str):
        return images
    return prompt, model, duration, ratio, tuple(images[:2])


def _validate_o3(payload: Mapping[str, Any], prompt: str) -> str | _Checked:
    """Check a starvideos_o3 body as the docs say.

    With ``referenceVideos`` the service ignores ``duration`` and ``ratio`` (the video
    decides); the fake then records the model's defaults.
    """
    if "images" in payload:
        return f"images is not a field of {_O3}: use referenceImages or first_image/last_image"
    references = _urls(payload, "referenceImages")
    videos = _urls(payload, "referenceVideos")
    if isinstance(references, str):
        return references
    if isinstance(videos, str):
        return videos
    given = [payload.get(name) for name in ("first_image", "last_image")]
    frames = [frame for frame in given if isinstance(frame, str)]
    if len(frames) != sum(frame is not None for frame in given):
        return "first_image and last_image must be URL strings"
    if frames and references:
        return "first_image/last_image cannot be combined with referenceImages"
    if frames and videos:
        return "referenceVideos come alone or with referenceImages, not with frames"
    if len(references) > (4 if videos else 7):
        return "referenceImages: at most 7 images, or 4 together with referenceVideos"
    duration = payload.get("duration")
    ratio = payload.get("ratio")
    if videos or duration is None:
        duration = 3
    elif type(duration) is not int or not 3 <= duration <= 15:
        return "duration must be an integer between 3 and 15"
    if videos or ratio is None:
        ratio = "9:16"
    elif ratio not in _O3_RATIOS:
        return "ratio must be '9:16', '1:1' or '16:9'"
    return prompt, _O3, duration, ratio, tuple(references or frames)


@attrs.define(eq=False)
class RecordedRequest:
    """One request the fake service saw (API or file host).

    Attributes:
        method: The HTTP method.
        path: The URL path, without the query string.
        query: The raw query string.
        host: The ``Host`` the request was sent to (``127.0.0.1:<port>``).
        endpoint: ``"create"``, ``"status"``, ``"file"`` or ``"other"``.
        headers: A case-insensitive copy of the request headers (a ``CIMultiDict``:
            ``"authorization" in rec.headers`` holds whatever case was sent).
        started: ``time.monotonic()`` when the handler started.
        body: The raw body (read on ``create`` only).
        json: The parsed JSON body of a ``create``, or ``None``.
        task_id: The task created (``create``) or asked about (``status``, ``file``).
        status: The HTTP status answered; ``None`` when the connection was dropped first.
        fault: The injected fault that shaped the answer, if any.
        ended: ``time.monotonic()`` when the handler returned.
    """

    method: str
    path: str
    query: str
    host: str
    endpoint: Endpoint
    headers: CIMultiDict[str]
    started: float
    body: bytes = b""
    json: Any = None
    task_id: str | None = None
    status: int | None = None
    fault: Fault | None = None
    ended: float | None = None


class RequestLog:
    """What a fake service saw: its requests, counters, arrival times, in-flight peaks.

    Attributes:
        requests: Every request recorded, in arrival order.
        counters: Requests per endpoint; missing keys read as 0.
        arrivals: The ``time.monotonic()`` arrivals, per endpoint.
        peak: The most requests handled at once, per endpoint.
        api_peak: The most requests on the API origin (not the file host) handled at once.
    """

    __slots__ = (
        "_api_in_flight",
        "_in_flight",
        "api_peak",
        "arrivals",
        "counters",
        "peak",
        "requests",
    )

    def __init__(self) -> None:
        self._in_flight: dict[str, int] = dict.fromkeys(_ENDPOINTS, 0)
        self._api_in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Forget everything seen; requests running now count towards the new peaks."""
        self.requests: list[RecordedRequest] = []
        self.counters: Counter[str] = Counter()
        self.arrivals: dict[str, array[float]] = {e: array("d") for e in _ENDPOINTS}
        # Requests running now still count (and will end): peaks restart from them.
        self.peak = dict(self._in_flight)
        self.api_peak = self._api_in_flight

    def begin(
        self, request: web.BaseRequest, endpoint: Endpoint, api: bool, record: bool
    ) -> RecordedRequest | None:
        """Count a request as it arrives; its record when ``record`` is set."""
        now = time.monotonic()
        self.counters[endpoint] += 1
        self.arrivals[endpoint].append(now)
        n = self._in_flight[endpoint] = self._in_flight[endpoint] + 1
        if n > self.peak[endpoint]:
            self.peak[endpoint] = n
        if api:
            self._api_in_flight += 1
            self.api_peak = max(self.api_peak, self._api_in_flight)
        if not record:
            return None
        headers = request.headers.copy()
        rec = RecordedRequest(
            request.method,
            request.path,
            request.query_string,
            request.host,
            endpoint,
            headers,
            now,
        )
        self.requests.append(rec)
        return rec

    def end(self, rec: RecordedRequest | None, endpoint: Endpoint, api: bool) -> None:
        """Count a request as answered (or dropped)."""
        self._in_flight[endpoint] -= 1
        if api:
            self._api_in_flight -= 1
        if rec is not None:
            rec.ended = time.monotonic()

    def arrival_times(self, endpoint: str) -> list[float]:
        """The sorted arrivals of ``endpoint`` (or ``"any"``)."""
        if endpoint == "any":
            return list(heapq.merge(*self.arrivals.values()))
        return list(self.arrivals[endpoint])

    def max_calls_in_window(self, endpoint: str, window: float) -> int:
        """The most arrivals of ``endpoint`` (or ``"any"``) in any ``[t, t+window)``."""
        times = self.arrival_times(endpoint)
        best = 0
        for i, start in enumerate(times):
            best = max(best, bisect.bisect_left(times, start + window, lo=i) - i)
        return best
