"""The data: request validation, task snapshots parsed from documented answers, statuses."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from starvideos_async import AsyncStarVideos, InvalidRequestError, TaskStatus, Video, VideoRequest
from starvideos_async._models import MODELS
from starvideos_async._serde import request_body, structure_video
from starvideos_async.testing import FakeStarVideos

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
    ({"duration": None}, "duration"),
    ({"ratio": "1:1"}, "ratio"),
    ({"ratio": "16x9"}, "ratio"),
    ({"ratio": ""}, "ratio"),
    ({"ratio": None}, "ratio"),
    ({"model": "starvideos_o3"}, "model"),
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


def test_defaults_are_the_documented_ones() -> None:
    request = VideoRequest("a fox")
    assert (request.model, request.duration, request.ratio, request.images) == (
        "starvideos_v3",
        5,
        "16:9",
        (),
    )


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


def test_request_is_frozen() -> None:
    request = VideoRequest("a fox")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.duration = 7  # type: ignore[misc]


def test_unknown_model_is_accepted_with_the_explicit_opt_out() -> None:
    request = VideoRequest(
        "a fox", model="starvideos_o3", duration=20, ratio="1:1", allow_unknown_model=True
    )
    assert request.model == "starvideos_o3"
    assert "allow_unknown_model" not in request_body(request)


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


def test_per_model_rules_live_in_one_table() -> None:
    spec = MODELS["starvideos_v3"]
    assert (spec.min_duration, spec.max_duration, spec.ratios, spec.max_images) == (
        3,
        15,
        ("16:9", "9:16"),
        2,
    )


# -- the request body -----------------------------------------------------------------


def test_body_has_no_images_key_when_there_are_none() -> None:
    assert request_body(VideoRequest("a fox", key="mine")) == {
        "prompt": "a fox",
        "model": "starvideos_v3",
        "duration": 5,
        "ratio": "16:9",
    }


def test_body_sends_images_as_a_list() -> None:
    body = request_body(VideoRequest("a fox", images=(GOOD_IMAGE, OTHER_IMAGE)))
    assert body["images"] == [GOOD_IMAGE, OTHER_IMAGE]


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


def test_documented_create_answer_parses_as_queued() -> None:
    video = structure_video(DOC_CREATED)
    assert video == Video(
        id="video_starvideos_1234567890",
        status=TaskStatus.QUEUED,
        object="video",
        created=1774836724,
        model="starvideos_v3",
    )
    assert video.extra == {}
    assert not video.is_terminal


def test_documented_processing_answer_parses() -> None:
    video = structure_video(DOC_PROCESSING)
    assert video.status is TaskStatus.PROCESSING
    assert video.video_url is None
    assert video.actual_duration is None
    assert not video.is_terminal
    assert not video.is_completed


def test_documented_completed_answer_parses_with_actual_duration() -> None:
    video = structure_video(DOC_COMPLETED)
    assert video.status is TaskStatus.COMPLETED
    assert video.is_terminal
    assert video.is_completed
    assert video.video_url == DOC_COMPLETED["video_url"]
    assert video.actual_duration == 5.04
    assert video.extra == {}


def test_integer_actual_duration_becomes_a_float() -> None:
    video = structure_video({**DOC_COMPLETED, "actualDuration": 5})
    assert video.actual_duration == 5.0
    assert isinstance(video.actual_duration, float)


def test_documented_failed_answer_parses_with_its_error() -> None:
    video = structure_video(DOC_FAILED)
    assert video.status is TaskStatus.FAILED
    assert video.error == "content moderation"
    assert video.is_terminal
    assert not video.is_completed


def test_unknown_fields_are_kept_in_extra() -> None:
    data = {**DOC_PROCESSING, "progress": 40, "thumbnail": {"url": "https://t/x.png"}}
    video = structure_video(data)
    assert video.extra == {"progress": 40, "thumbnail": {"url": "https://t/x.png"}}
    assert video.status is TaskStatus.PROCESSING


def test_unknown_status_is_kept_as_a_string_and_not_terminal() -> None:
    video = structure_video({**DOC_PROCESSING, "status": "moderating"})
    assert video.status == "moderating"
    assert not isinstance(video.status, TaskStatus)
    assert video.status_value == "moderating"
    assert not video.is_terminal
    assert not video.is_completed


def test_cancelled_is_terminal_but_not_completed() -> None:
    video = structure_video({**DOC_PROCESSING, "status": "cancelled"})
    assert video.status is TaskStatus.CANCELLED
    assert video.is_terminal
    assert not video.is_completed


def test_minimal_answer_with_only_id_and_status_parses() -> None:
    video = structure_video({"id": "video_starvideos_1", "status": "queued"})
    assert (video.created, video.model, video.error) == (None, None, None)


def test_integral_float_created_is_accepted() -> None:
    assert structure_video({**DOC_CREATED, "created": 1774836724.0}).created == 1774836724


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param([DOC_CREATED], ValueError, id="a list"),
        pytest.param("queued", ValueError, id="a string"),
        pytest.param({**DOC_CREATED, "status": 2}, TypeError, id="numeric status"),
        pytest.param({**DOC_CREATED, "created": "today"}, TypeError, id="string created"),
        pytest.param({**DOC_CREATED, "created": 1.5}, TypeError, id="fractional created"),
        pytest.param({**DOC_CREATED, "id": 1234567890}, TypeError, id="numeric id"),
        pytest.param({**DOC_CREATED, "id": ""}, ValueError, id="empty id"),
        pytest.param({**DOC_COMPLETED, "actualDuration": "5s"}, TypeError, id="string duration"),
        pytest.param({**DOC_COMPLETED, "actualDuration": True}, TypeError, id="bool duration"),
        pytest.param({**DOC_COMPLETED, "video_url": 5}, TypeError, id="numeric url"),
        pytest.param({"object": "video", "status": "queued"}, KeyError, id="no id"),
        pytest.param({"id": "video_starvideos_1"}, KeyError, id="no status"),
        pytest.param({"error": {"message": "quota", "code": "q"}}, ValueError, id="nested error"),
        pytest.param({**DOC_CREATED, "error": {"message": "boom"}}, ValueError, id="id+error obj"),
        pytest.param({"error": "quota exceeded"}, ValueError, id="string error"),
        pytest.param({"message": "quota exceeded"}, ValueError, id="message"),
        pytest.param({"code": 500, "msg": "busy"}, ValueError, id="code+msg"),
    ],
)
def test_answers_that_are_not_the_documented_object_are_rejected(
    data: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        structure_video(data)


def test_error_payload_rejection_says_what_the_service_said() -> None:
    with pytest.raises(ValueError, match="busy"):
        structure_video({"code": 500, "msg": "busy"})


def test_video_repr_leaves_out_extra_and_video_is_frozen() -> None:
    video = structure_video({**DOC_PROCESSING, "secret_token": "abc"})
    assert "secret_token" not in repr(video)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        video.status = TaskStatus.COMPLETED  # type: ignore[misc]


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


def test_task_status_is_a_str_enum_of_the_wire_values() -> None:
    assert TaskStatus("processing") is TaskStatus.PROCESSING
    assert TaskStatus.COMPLETED == "completed"
    assert str(TaskStatus.FAILED) == "failed"
    assert f"{TaskStatus.QUEUED}" == "queued"
    assert {s.value for s in TaskStatus} == {
        "queued",
        "processing",
        "completed",
        "failed",
        "cancelled",
    }
