"""The second model, ``starvideos_o3``: the body sent for each documented mode, its
defaults, its rules (checked before any request), and the SDK's rules held against the
fake service's (which follows the platform's docs).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from aioresponses import aioresponses
from yarl import URL

from starvideos_async import AsyncStarVideos, InvalidRequestError, PollPolicy, VideoRequest
from starvideos_async.testing import FakeStarVideos

O3 = "starvideos_o3"
IMG = [f"https://cdn.example.com/ref{n}.png" for n in range(9)]
VID = [f"https://cdn.example.com/clip{n}.mp4" for n in range(3)]
ANSWER = {
    "id": "video_starvideos_1234567890",
    "object": "video",
    "created": 1774836724,
    "model": O3,
    "status": "queued",
    "error": None,
}

#: (mode, submit() keyword arguments besides prompt and model, the JSON body sent)
MODES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("text", {}, {"duration": 3, "ratio": "9:16"}),
    ("text", {"duration": 15, "ratio": "1:1"}, {"duration": 15, "ratio": "1:1"}),
    (
        "image",
        {"reference_images": IMG[:1]},
        {"duration": 3, "ratio": "9:16", "referenceImages": IMG[:1]},
    ),
    (
        "image",
        {"reference_images": IMG[:7], "duration": 8, "ratio": "16:9"},
        {"duration": 8, "ratio": "16:9", "referenceImages": IMG[:7]},
    ),
    (
        "first_last_frame",
        {"first_image": IMG[0], "last_image": IMG[1], "ratio": "1:1"},
        {"duration": 3, "ratio": "1:1", "first_image": IMG[0], "last_image": IMG[1]},
    ),
    (  # first frame alone: the platform does not say it is refused, so it is sent
        "first_last_frame",
        {"first_image": IMG[0]},
        {"duration": 3, "ratio": "9:16", "first_image": IMG[0]},
    ),
    ("video", {"reference_videos": VID[:1]}, {"referenceVideos": VID[:1]}),
    (  # how many videos is not documented: sent as given
        "video",
        {"reference_videos": VID},
        {"referenceVideos": VID},
    ),
    (
        "image_video",
        {"reference_videos": VID[:1], "reference_images": IMG[:1]},
        {"referenceImages": IMG[:1], "referenceVideos": VID[:1]},
    ),
    (
        "image_video",
        {"reference_videos": VID[:1], "reference_images": IMG[:4]},
        {"referenceImages": IMG[:4], "referenceVideos": VID[:1]},
    ),
]
MODE_IDS = [f"{mode}-{n}" for n, (mode, _, _) in enumerate(MODES)]


@pytest.mark.parametrize(("mode", "kwargs", "sent"), MODES, ids=MODE_IDS)
async def test_each_mode_sends_the_documented_body_to_the_fake(
    fake: FakeStarVideos,
    fake_client: AsyncStarVideos,
    mode: str,
    kwargs: dict[str, Any],
    sent: dict[str, Any],
) -> None:
    task = await fake_client.submit("a fox in snow", model=O3, **kwargs)
    [rec] = fake.requests
    assert rec.json == {"prompt": "a fox in snow", "model": O3, **sent}
    assert rec.status == 200
    assert fake.tasks[task.id].model == O3
    assert task.request is not None
    assert task.request.mode == mode


@pytest.mark.parametrize(("mode", "kwargs", "sent"), MODES, ids=MODE_IDS)
async def test_each_mode_sends_the_documented_body_under_aioresponses(
    mock_api: aioresponses,
    mock_client: AsyncStarVideos,
    create_url: str,
    mode: str,
    kwargs: dict[str, Any],
    sent: dict[str, Any],
) -> None:
    mock_api.post(create_url, payload=ANSWER)
    task = await mock_client.submit(VideoRequest("a fox in snow", model=O3, **kwargs))
    [call] = mock_api.requests[("POST", URL(create_url))]
    assert json.loads(call.kwargs["data"]) == {"prompt": "a fox in snow", "model": O3, **sent}
    assert task.id == ANSWER["id"]


async def test_the_v3_body_is_unchanged_field_for_field_and_in_order(
    mock_api: aioresponses, mock_client: AsyncStarVideos, create_url: str
) -> None:
    mock_api.post(create_url, payload=ANSWER, repeat=True)
    await mock_client.submit("a fox")
    await mock_client.submit("a fox", duration=7, ratio="9:16", images=IMG[:2])
    first, second = mock_api.requests[("POST", URL(create_url))]
    assert list(json.loads(first.kwargs["data"]).items()) == [
        ("prompt", "a fox"),
        ("model", "starvideos_v3"),
        ("duration", 5),
        ("ratio", "16:9"),
    ]
    assert list(json.loads(second.kwargs["data"]).items()) == [
        ("prompt", "a fox"),
        ("model", "starvideos_v3"),
        ("duration", 7),
        ("ratio", "9:16"),
        ("images", IMG[:2]),
    ]


async def test_generate_takes_the_o3_inputs(fake: FakeStarVideos) -> None:
    async with fake.client(poll_policy=PollPolicy.fixed(0.01)) as client:
        video = await client.generate(
            "a fox", model=O3, first_image=IMG[0], last_image=IMG[1], timeout=30
        )
    assert video.model == O3
    assert fake.requests[0].json["first_image"] == IMG[0]


def test_defaults_are_the_models() -> None:
    o3 = VideoRequest("a fox", model=O3)
    assert (o3.duration, o3.ratio) == (3, "9:16")
    assert o3 == VideoRequest("a fox", model=O3, duration=3, ratio="9:16")
    v3 = VideoRequest("a fox")
    assert (v3.duration, v3.ratio) == (5, "16:9")
    with_video = VideoRequest("a fox", model=O3, reference_videos=VID[:1])
    assert (with_video.duration, with_video.ratio) == (None, None)  # the video decides


def test_the_o3_inputs_accept_any_iterable_and_are_kept_as_tuples() -> None:
    request = VideoRequest(
        "a fox", model=O3, reference_images=iter(IMG[:2]), reference_videos=[VID[0]]
    )
    assert request.reference_images == tuple(IMG[:2])
    assert request.reference_videos == (VID[0],)
    assert (request.first_image, request.last_image) == (None, None)


# -- rules, checked before any request ----------------------------------------------------

#: (VideoRequest keyword arguments besides the prompt, the field named, words of the message)
BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"model": O3, "ratio": "4:3"}, "ratio", "allowed: 9:16, 1:1, 16:9"),
    ({"model": O3, "ratio": "21:9"}, "ratio", "allowed: 9:16, 1:1, 16:9"),
    ({"model": O3, "duration": 2}, "duration", "allowed: 3..15"),
    ({"model": O3, "duration": 16}, "duration", "allowed: 3..15"),
    ({"model": O3, "duration": 5.0}, "duration", "an int"),
    ({"model": O3, "reference_images": IMG[:8]}, "reference_images", "at most 7 images"),
    (
        {"model": O3, "reference_images": IMG[:5], "reference_videos": VID[:1]},
        "reference_images",
        "at most 4 images together with reference_videos",
    ),
    (
        {"model": O3, "first_image": IMG[0], "reference_images": IMG[1:2]},
        "first_image",
        "not combined with reference_images",
    ),
    (
        {"model": O3, "last_image": IMG[0], "reference_images": IMG[1:2]},
        "last_image",
        "not combined with reference_images",
    ),
    (
        {"model": O3, "first_image": IMG[0], "reference_videos": VID[:1]},
        "first_image",
        "not combined with reference_videos",
    ),
    (
        {"model": O3, "reference_videos": VID[:1], "duration": 5},
        "duration",
        "follows the reference video",
    ),
    (
        {"model": O3, "reference_videos": VID[:1], "ratio": "16:9"},
        "ratio",
        "follows the reference video",
    ),
    ({"model": O3, "images": IMG[:1]}, "images", "use reference_images, or first_image"),
    ({"reference_images": IMG[:1]}, "reference_images", "use images"),
    ({"first_image": IMG[0]}, "first_image", "use images"),
    ({"last_image": IMG[0]}, "last_image", "use images"),
    ({"reference_videos": VID[:1]}, "reference_videos", "use images"),
    ({"model": O3, "reference_images": IMG[0]}, "reference_images", "a list of URL strings"),
    ({"model": O3, "reference_videos": VID[0]}, "reference_videos", "a list of URL strings"),
    ({"model": O3, "reference_images": ["ftp://x/a.png"]}, "reference_images[0]", "http(s)"),
    ({"model": O3, "reference_images": [IMG[0], "a.png"]}, "reference_images[1]", "http(s)"),
    ({"model": O3, "reference_videos": ["/clip.mp4"]}, "reference_videos[0]", "http(s)"),
    ({"model": O3, "first_image": "cdn.example.com/a.png"}, "first_image", "http(s)"),
    ({"model": O3, "last_image": "https://"}, "last_image", "http(s)"),
    ({"model": O3, "first_image": 5}, "first_image", "http(s)"),
    ({"model": O3, "prompt": " "}, "prompt", "non-empty"),
]
BAD_IDS = [f"{field}-{n}" for n, (_, field, _) in enumerate(BAD)]


@pytest.mark.parametrize(("kwargs", "field", "words"), BAD, ids=BAD_IDS)
def test_a_bad_o3_request_names_the_field_and_what_is_allowed(
    kwargs: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        VideoRequest(**{"prompt": "a fox", **kwargs})
    assert info.value.field == field
    assert words in str(info.value)


@pytest.mark.parametrize(("kwargs", "field", "words"), BAD, ids=BAD_IDS)
async def test_a_bad_o3_submit_sends_nothing(
    fake: FakeStarVideos,
    fake_client: AsyncStarVideos,
    kwargs: dict[str, Any],
    field: str,
    words: str,
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await fake_client.submit(**{"prompt": "a fox", **kwargs})
    assert info.value.field == field
    assert sum(fake.counters.values()) == 0
    assert fake.requests == []
    assert fake.created == 0


def test_the_opt_out_sends_every_input_given_and_still_checks_urls() -> None:
    request = VideoRequest(
        "a fox",
        model="next_model",
        images=IMG[:3],
        reference_images=IMG[:9],
        allow_unknown_model=True,
    )
    assert len(request.reference_images) == 9
    with pytest.raises(InvalidRequestError) as info:
        VideoRequest("a fox", model="next_model", first_image="ftp://a", allow_unknown_model=True)
    assert info.value.field == "first_image"


def test_the_rules_for_starvideos_o3_are_the_services(fake: FakeStarVideos) -> None:
    """What the SDK accepts is what the service creates, over the combinations of the
    inputs; the one difference by design: an explicit duration or ratio beside reference
    videos, which the service ignores and the SDK refuses."""
    durations = [None, 2, 3, 15, 16]
    ratios = [None, "9:16", "1:1", "16:9", "4:3"]
    frames = [(), (IMG[0],), (IMG[0], IMG[1])]
    for duration, ratio, n_images, frame, n_videos in itertools.product(
        durations, ratios, [0, 1, 4, 5, 7, 8], frames, [0, 1, 2]
    ):
        kwargs: dict[str, Any] = {
            "duration": duration,
            "ratio": ratio,
            "reference_images": IMG[:n_images],
            "first_image": frame[0] if frame else None,
            "last_image": frame[1] if len(frame) > 1 else None,
            "reference_videos": VID[:n_videos],
        }
        try:
            VideoRequest("a fox", model=O3, **kwargs)
        except InvalidRequestError:
            accepted = False
        else:
            accepted = True
        body: dict[str, Any] = {
            "model": O3,
            "duration": duration,
            "ratio": ratio,
            "referenceImages": IMG[:n_images] or None,
            "first_image": kwargs["first_image"],
            "last_image": kwargs["last_image"],
            "referenceVideos": VID[:n_videos] or None,
        }
        try:
            fake.create_task({k: v for k, v in body.items() if v is not None})
        except ValueError:
            created = False
        else:
            created = True
        ignored = n_videos and (duration, ratio) != (None, None)
        assert accepted == (created and not ignored), kwargs
