"""The data: request validation, the body sent for a request, task snapshots parsed from
documented answers, statuses.

Bodies are read where the fake service received them; answers are served by the fake
(``Fault.status(200, body=...)``) and parsed by the client, as in use.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from starvideos_async import (
    AsyncStarVideos,
    BadRequestError,
    InvalidRequestError,
    MalformedResponseError,
    TaskStatus,
    Video,
    VideoRequest,
)
from starvideos_async.testing import FakeStarVideos, Fault

GOOD_IMAGE = "https://cdn.example.com/first.png"
OTHER_IMAGE = "http://cdn.example.com/last.jpg?size=large"

#: (keyword arguments of VideoRequest besides a good prompt, the field the error names)
BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   \n\t"}, "prompt"),
    ({"prompt": None}, "prompt"),
    ({"prompt": 42}, "prompt"),
    ({"duration": 2}, "duration"),
    ({"duration": 16}, "duration"),
    ({"duration": 0}, "duration"),
    ({"duration": -5}, "duration"),
    ({"duration": True}, "duration"),
    ({"duration": 5.0}, "duration"),
    ({"duration": "5"}, "duration"),
    ({"ratio": "1:1"}, "ratio"),
    ({"ratio": "16x9"}, "ratio"),
    ({"ratio": ""}, "ratio"),
    ({"ratio": 16}, "ratio"),
    ({"model": "starvideos_o4"}, "model"),
    ({"model": ""}, "model"),
    ({"model": None}, "model"),
    ({"images": [GOOD_IMAGE, OTHER_IMAGE, GOOD_IMAGE]}, "images"),
    ({"images": GOOD_IMAGE}, "images"),
    ({"images": 7}, "images"),
    ({"images": ["ftp://cdn.example.com/a.png"]}, "images[0]"),
    ({"images": ["/relative/a.png"]}, "images[0]"),
    ({"images": ["cdn.example.com/a.png"]}, "images[0]"),
    ({"images": ["https://"]}, "images[0]"),
    ({"images": [""]}, "images[0]"),
    ({"images": [" " + GOOD_IMAGE]}, "images[0]"),
    ({"images": ["https://cdn.example.com/a b.png"]}, "images[0]"),
    ({"images": [None]}, "images[0]"),
    ({"images": ["https://[::1/a.png"]}, "images[0]"),
    ({"images": ["http://cdn.example.com:99999/a.png"]}, "images[0]"),
    ({"images": [GOOD_IMAGE, "not a url"]}, "images[1]"),
    ({"images": [GOOD_IMAGE, b"https://cdn.example.com/b.png"]}, "images[1]"),
]


def _case_id(case: tuple[dict[str, Any], str]) -> str:
    ((name, value),) = case[0].items()
    return f"{name}={value!r}"[:40]


@pytest.mark.parametrize(("kwargs", "field"), BAD_REQUESTS, ids=map(_case_id, BAD_REQUESTS))
def test_bad_request_raises_invalid_request_error_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        VideoRequest(**{"prompt": "a fox in the snow", **kwargs})
    exc = info.value
    assert isinstance(exc, ValueError)
    assert exc.field == field
    assert str(exc).startswith(f"invalid {field}: {exc.value!r}"[:40])


@pytest.mark.parametrize(("kwargs", "field"), BAD_REQUESTS, ids=map(_case_id, BAD_REQUESTS))
async def test_bad_submit_fails_before_any_http_request(
    fake: FakeStarVideos, fake_client: AsyncStarVideos, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await fake_client.submit(**{"prompt": "a fox in the snow", **kwargs})
    assert info.value.field == field
    assert fake.requests == []
    assert fake.created == 0


async def test_submit_many_refuses_a_non_request_before_any_http_request(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    with pytest.raises(TypeError, match=r"requests\[1\] is dict"):
        await fake_client.submit_many([VideoRequest("a fox"), {"prompt": "a fox"}])  # type: ignore[list-item]
    assert fake.requests == []


def test_error_message_names_value_and_what_is_allowed() -> None:
    with pytest.raises(InvalidRequestError, match=r"invalid duration: 20; allowed: 3\.\.15"):
        VideoRequest("a fox", duration=20)
    with pytest.raises(InvalidRequestError, match=r"invalid ratio: '4:3'; allowed: 16:9, 9:16"):
        VideoRequest("a fox", ratio="4:3")


def test_error_message_shortens_a_huge_value() -> None:
    with pytest.raises(InvalidRequestError) as info:
        VideoRequest("a fox", ratio="9" * 500)
    assert len(str(info.value)) < 200
    assert "..." in str(info.value)


def test_more_than_two_images_is_an_error_explaining_the_service_would_drop_them() -> None:
    with pytest.raises(InvalidRequestError, match="silently ignore"):
        VideoRequest("a fox", images=[GOOD_IMAGE] * 3)


def test_key_must_be_a_string() -> None:
    with pytest.raises(InvalidRequestError) as info:
        VideoRequest("a fox", key=5)  # type: ignore[arg-type]
    assert info.value.field == "key"


@pytest.mark.parametrize("duration", [3, 15])
def test_duration_bounds_are_inclusive(duration: int) -> None:
    assert VideoRequest("a fox", duration=duration).duration == duration


@pytest.mark.parametrize(
    ("images", "mode"),
    [(None, "text"), ([GOOD_IMAGE], "image"), ([GOOD_IMAGE, OTHER_IMAGE], "first_last_frame")],
)
def test_mode_follows_the_number_of_images(images: list[str] | None, mode: str) -> None:
    request = VideoRequest("a fox", images=images)  # type: ignore[arg-type]
    assert request.mode == mode
    assert request.images == tuple(images or ())


def test_images_accept_any_iterable_and_are_stored_as_a_tuple() -> None:
    request = VideoRequest("a fox", images=iter([GOOD_IMAGE]))  # type: ignore[arg-type]
    assert request.images == (GOOD_IMAGE,)


async def test_unknown_model_is_sent_with_the_explicit_opt_out_and_the_opt_out_is_not(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    request = VideoRequest(
        "a fox", model="starvideos_o4", duration=20, ratio="1:1", allow_unknown_model=True
    )
    with pytest.raises(BadRequestError):  # the fake knows only the documented models
        await fake_client.submit(request)
    assert fake.requests[-1].json == {
        "prompt": "a fox",
        "model": "starvideos_o4",
        "duration": 20,
        "ratio": "1:1",
    }


async def test_an_unknown_model_gets_no_invented_defaults(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    request = VideoRequest("a fox", model="starvideos_o4", allow_unknown_model=True)
    assert (request.duration, request.ratio) == (None, None)
    with pytest.raises(BadRequestError):
        await fake_client.submit(request)
    assert fake.requests[-1].json == {"prompt": "a fox", "model": "starvideos_o4"}


def test_an_omitted_duration_or_ratio_is_the_models_default() -> None:
    assert VideoRequest("a fox", duration=None, ratio=None) == VideoRequest(
        "a fox", duration=5, ratio="16:9"
    )
    assert VideoRequest("a fox").duration == 5
    assert VideoRequest("a fox").ratio == "16:9"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"duration": True}, "duration"),
        ({"duration": 0}, "duration"),
        ({"ratio": ""}, "ratio"),
        ({"images": ["ftp://x/y.png"]}, "images[0]"),
        ({"prompt": " "}, "prompt"),
    ],
)
def test_opt_out_keeps_the_model_independent_rules(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        VideoRequest(
            **{"prompt": "a fox", "model": "next_model", **kwargs}, allow_unknown_model=True
        )
    assert info.value.field == field


def test_the_rules_for_starvideos_v3_are_the_services(fake: FakeStarVideos) -> None:
    """What the SDK accepts is what the service creates (the fake follows the docs), so
    a valid request is never refused, nor a bad one sent; more than two images is refused
    because the service would drop the rest."""
    image = [GOOD_IMAGE, OTHER_IMAGE, GOOD_IMAGE]
    durations = [-1, 0, 1, 2, 3, 4, 5, 10, 14, 15, 16, 20, 60]
    ratios = ["16:9", "9:16", "1:1", "4:3", "21:9", "16:10", ""]
    for duration, ratio, images in itertools.product(durations, ratios, range(4)):
        body = {"duration": duration, "ratio": ratio, "images": image[:images]}
        try:
            VideoRequest("a fox", **body)  # type: ignore[arg-type]
        except InvalidRequestError:
            accepted = False
        else:
            accepted = True
        try:
            task = fake.create_task(body)
        except ValueError:
            assert not accepted, body
        else:
            assert accepted == (images <= 2), body
            assert task.images == tuple(image[: min(images, 2)])


# -- the request body -----------------------------------------------------------------


async def test_the_body_has_the_documented_defaults_and_no_images_key_without_images(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    await fake_client.submit(VideoRequest("a fox", key="mine"))
    assert fake.requests[-1].json == {
        "prompt": "a fox",
        "model": "starvideos_v3",
        "duration": 5,
        "ratio": "16:9",
    }
    await fake_client.submit("a fox")
    assert fake.requests[-1].json == {
        "prompt": "a fox",
        "model": "starvideos_v3",
        "duration": 5,
        "ratio": "16:9",
    }


async def test_the_body_sends_the_arguments_and_images_as_a_list(
    fake: FakeStarVideos, fake_client: AsyncStarVideos
) -> None:
    await fake_client.submit("a fox", duration=3, ratio="9:16", images=(GOOD_IMAGE, OTHER_IMAGE))
    assert fake.requests[-1].json == {
        "prompt": "a fox",
        "model": "starvideos_v3",
        "duration": 3,
        "ratio": "9:16",
        "images": [GOOD_IMAGE, OTHER_IMAGE],
    }
    assert fake.created == 1


# -- parsing task snapshots ------------------------------------------------------------

DOC_CREATED = {
    "id": "video_starvideos_1234567890",
    "object": "video",
    "created": 1774836724,
    "model": "starvideos_v3",
    "status": "queued",
    "error": None,
}
DOC_PROCESSING = {
    "id": "video_starvideos_1234567890",
    "object": "video",
    "created": 1774836724,
    "model": "starvideos_v3",
    "status": "processing",
    "video_url": None,
    "error": None,
}
DOC_COMPLETED = {
    **DOC_PROCESSING,
    "status": "completed",
    "video_url": "https://files.example.com/v/1234567890.mp4?sig=abc",
    "actualDuration": 5.04,
}
DOC_FAILED = {**DOC_PROCESSING, "status": "failed", "error": "content moderation"}


@pytest.fixture
async def strict_client(fake: FakeStarVideos) -> AsyncIterator[AsyncStarVideos]:
    """A client of the fake that does not retry (a broken answer surfaces at once)."""
    async with fake.client(max_retries=0) as client:
        yield client


async def _parsed(fake: FakeStarVideos, client: AsyncStarVideos, answer: object) -> Video:
    """What the client makes of ``answer`` sent as a 200 to a status query."""
    body = json.dumps(answer).encode()
    fake.inject(Fault.status(200, body=body, content_type="application/json"), "status")
    return await client.retrieve("video_starvideos_1234567890")


async def test_documented_create_answer_parses_as_queued(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    body = json.dumps(DOC_CREATED).encode()
    fake.inject(Fault.status(200, body=body, content_type="application/json"), "create")
    task = await strict_client.submit("a fox")
    assert task.id == "video_starvideos_1234567890"
    assert task.latest == Video(
        id="video_starvideos_1234567890",
        status=TaskStatus.QUEUED,
        object="video",
        created=1774836724,
        model="starvideos_v3",
    )
    assert task.latest.extra == {}
    assert not task.latest.is_terminal
    assert task.status is TaskStatus.QUEUED


async def test_documented_processing_answer_parses(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    video = await _parsed(fake, strict_client, DOC_PROCESSING)
    assert video.status is TaskStatus.PROCESSING
    assert video.video_url is None
    assert video.actual_duration is None
    assert not video.is_terminal
    assert not video.is_completed


async def test_documented_completed_answer_parses_with_actual_duration(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    video = await _parsed(fake, strict_client, DOC_COMPLETED)
    assert video.status is TaskStatus.COMPLETED
    assert video.is_terminal
    assert video.is_completed
    assert video.video_url == DOC_COMPLETED["video_url"]
    assert video.actual_duration == 5.04
    assert video.extra == {}


async def test_integer_actual_duration_becomes_a_float(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    video = await _parsed(fake, strict_client, {**DOC_COMPLETED, "actualDuration": 5})
    assert video.actual_duration == 5.0
    assert isinstance(video.actual_duration, float)


async def test_documented_failed_answer_parses_with_its_error(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    video = await _parsed(fake, strict_client, DOC_FAILED)
    assert video.status is TaskStatus.FAILED
    assert video.error == "content moderation"
    assert video.is_terminal
    assert not video.is_completed


async def test_unknown_fields_are_kept_in_extra(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    data = {**DOC_PROCESSING, "progress": 40, "thumbnail": {"url": "https://t/x.png"}}
    video = await _parsed(fake, strict_client, data)
    assert video.extra == {"progress": 40, "thumbnail": {"url": "https://t/x.png"}}
    assert video.status is TaskStatus.PROCESSING


async def test_unknown_status_is_kept_as_a_string_and_not_terminal(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    video = await _parsed(fake, strict_client, {**DOC_PROCESSING, "status": "moderating"})
    assert video.status == "moderating"
    assert not isinstance(video.status, TaskStatus)
    assert video.status_value == "moderating"
    assert not video.is_terminal
    assert not video.is_completed


async def test_cancelled_is_terminal_but_not_completed(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    video = await _parsed(fake, strict_client, {**DOC_PROCESSING, "status": "cancelled"})
    assert video.status is TaskStatus.CANCELLED
    assert video.is_terminal
    assert not video.is_completed


async def test_minimal_answer_with_only_id_and_status_parses(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    video = await _parsed(fake, strict_client, {"id": "video_starvideos_1", "status": "queued"})
    assert (video.object, video.created, video.model, video.error) == ("video", None, None, None)


async def test_integral_float_created_is_accepted(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    video = await _parsed(fake, strict_client, {**DOC_CREATED, "created": 1774836724.0})
    assert video.created == 1774836724
    assert type(video.created) is int


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([DOC_CREATED], id="a list"),
        pytest.param("queued", id="a string"),
        pytest.param({**DOC_CREATED, "status": 2}, id="numeric status"),
        pytest.param({**DOC_CREATED, "created": "today"}, id="string created"),
        pytest.param({**DOC_CREATED, "created": 1.5}, id="fractional created"),
        pytest.param({**DOC_CREATED, "id": 1234567890}, id="numeric id"),
        pytest.param({**DOC_CREATED, "id": ""}, id="empty id"),
        pytest.param({**DOC_CREATED, "model": ["starvideos_v3"]}, id="list model"),
        pytest.param({**DOC_COMPLETED, "actualDuration": "5s"}, id="string duration"),
        pytest.param({**DOC_COMPLETED, "actualDuration": True}, id="bool duration"),
        pytest.param({**DOC_COMPLETED, "video_url": 5}, id="numeric url"),
        pytest.param({**DOC_FAILED, "error": 42}, id="numeric error"),
        pytest.param({"object": "video", "status": "queued"}, id="no id"),
        pytest.param({"id": "video_starvideos_1"}, id="no status"),
        pytest.param({"error": {"message": "quota", "code": "q"}}, id="nested error"),
        pytest.param({**DOC_CREATED, "error": {"message": "boom"}}, id="id+error obj"),
        pytest.param({"error": "quota exceeded"}, id="string error"),
        pytest.param({"message": "quota exceeded"}, id="message"),
        pytest.param({"code": 500, "msg": "busy"}, id="code+msg"),
    ],
)
async def test_answers_that_are_not_the_documented_object_are_malformed_responses(
    fake: FakeStarVideos, strict_client: AsyncStarVideos, data: object
) -> None:
    with pytest.raises(MalformedResponseError) as info:
        await _parsed(fake, strict_client, data)
    assert info.value.request.path == "/v1/result/video_starvideos_1234567890"
    assert info.value.body == json.dumps(data)
    assert fake.counters["status"] == 1


@pytest.mark.parametrize(
    ("data", "said"),
    [
        pytest.param({"code": 500, "msg": "busy"}, "busy", id="code+msg"),
        pytest.param({"error": {"message": "quota", "code": "q"}}, "quota", id="nested error"),
        pytest.param({"id": "video_starvideos_1"}, "status", id="no status"),
    ],
)
async def test_a_rejected_answer_says_what_was_wrong_with_it(
    fake: FakeStarVideos, strict_client: AsyncStarVideos, data: object, said: str
) -> None:
    with pytest.raises(MalformedResponseError, match=said):
        await _parsed(fake, strict_client, data)


async def test_video_repr_leaves_out_extra(
    fake: FakeStarVideos, strict_client: AsyncStarVideos
) -> None:
    """``extra`` holds whatever the service adds, tokens too: kept out of logs."""
    video = await _parsed(fake, strict_client, {**DOC_PROCESSING, "secret_token": "abc"})
    assert video.extra == {"secret_token": "abc"}
    assert "secret_token" not in repr(video)
    assert "abc" not in repr(video)
    assert "video_starvideos_1234567890" in repr(video)


# -- statuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (TaskStatus.QUEUED, False),
        (TaskStatus.PROCESSING, False),
        (TaskStatus.COMPLETED, True),
        (TaskStatus.FAILED, True),
        (TaskStatus.CANCELLED, True),
    ],
)
def test_task_status_is_terminal(status: TaskStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal


def test_task_status_is_a_str_enum_printed_as_its_wire_value() -> None:
    assert TaskStatus("processing") is TaskStatus.PROCESSING
    assert TaskStatus.COMPLETED == "completed"
    assert str(TaskStatus.FAILED) == "failed"
    assert f"{TaskStatus.QUEUED}" == "queued"


@pytest.mark.parametrize("status", list(TaskStatus))
async def test_every_status_the_service_sends_becomes_its_member(
    fake: FakeStarVideos, strict_client: AsyncStarVideos, status: TaskStatus
) -> None:
    task = fake.create_task()
    fake.set_status(task.id, status.value)
    video = await strict_client.retrieve(task.id)
    assert video.status is status
    assert video.status_value == status.value
    assert video.is_terminal is status.is_terminal
