"""Progress output of the command line, and the batch input parser, without subprocesses."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from starvideos_async import Estimate, PollPolicy
from starvideos_async._cli._output import (
    JsonReporter,
    Reporter,
    RichReporter,
    make_reporter,
    seconds,
)
from starvideos_async.batch import BatchResult
from starvideos_async.batch._inputs import InputError, load_requests, parse_requests

RESULTS = [
    BatchResult(key="a", status="completed", task_id="video_1", path=Path("/v/video_1.mp4")),
    BatchResult(key="b", status="failed", task_id="video_2", error="content moderation"),
    BatchResult(key="c", status="unknown", error="no answer to the create"),
]


def run(reporter: Reporter) -> None:
    reporter.start(4, title="unit")
    for result in RESULTS:
        reporter.result(result)
    reporter.finish()


def test_plain_reporter_prints_one_line_per_event_and_a_summary() -> None:
    out = io.StringIO()
    run(Reporter(out))
    lines = out.getvalue().splitlines()
    assert lines[0] == "unit: 4 requests"
    assert lines[1] == "[1/4] completed key=a id=video_1 file=/v/video_1.mp4"
    assert lines[2] == "[2/4] failed key=b id=video_2 error='content moderation'"
    assert lines[3] == "[3/4] unknown key=c error='no answer to the create'"
    assert lines[4].startswith("summary: 3/4 done in ")
    assert lines[4].endswith("(1 completed, 1 failed, 1 unknown)")


def test_json_reporter_emits_machine_readable_records() -> None:
    out = io.StringIO()
    run(JsonReporter(out))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["start", "result", "result", "result", "summary"]
    assert records[1]["path"] == "/v/video_1.mp4"
    assert records[2]["error"] == "content moderation"
    assert records[-1]["counts"] == {"completed": 1, "failed": 1, "unknown": 1}
    assert records[-1]["total"] == 4


def test_rich_reporter_renders_counts_eta_and_recent_tasks() -> None:
    out = io.StringIO()
    reporter = RichReporter(out)
    reporter.start(4, title="unit")
    reporter.result(RESULTS[0])
    assert reporter.eta() is not None  # one of four done: the rest is extrapolated
    for result in RESULTS[1:]:
        reporter.result(result)
    reporter.message("a note")
    reporter.finish()
    text = out.getvalue()
    for needle in ("StarVideos unit", "completed", "failed", "unknown", "3/4 done", "a note"):
        assert needle in text
    assert "video_2" in text
    assert "content moderation" in text


def test_a_timed_out_summary_says_how_many_are_unfinished() -> None:
    plain, as_json, rich = io.StringIO(), io.StringIO(), io.StringIO()
    for reporter in (Reporter(plain), JsonReporter(as_json), RichReporter(rich)):
        reporter.start(4, title="unit")
        reporter.result(RESULTS[0])
        reporter.finish(timed_out=True)
    assert (
        plain.getvalue()
        .splitlines()[-1]
        .endswith("(1 completed); timed out, 3 unfinished (resumable)")
    )
    summary = json.loads(as_json.getvalue().splitlines()[-1])
    assert (summary["timed_out"], summary["unfinished"]) == (True, 3)
    assert "timed out, 3 unfinished (resumable)" in rich.getvalue()


def test_reporter_choice_follows_the_terminal_and_the_json_flag() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert type(make_reporter(json_output=True, stream=Tty())) is JsonReporter
    assert type(make_reporter(json_output=False, stream=Tty())) is RichReporter
    assert type(make_reporter(json_output=False, stream=io.StringIO())) is Reporter


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        (
            '# a comment\n{"prompt": "a", "duration": 7, "key": "k1"}\n\n',
            "jsonl",
            [("a", 7, "16:9", (), "k1")],
        ),
        (
            '{"prompt": "b", "images": ["https://x.test/1.png"], "ratio": "9:16"}\n',
            "jsonl",
            [("b", 5, "9:16", ("https://x.test/1.png",), None)],
        ),
        (
            "prompt,duration,image1,image2\nc,3,https://x.test/1.png,https://x.test/2.png\n",
            "csv",
            [("c", 3, "16:9", ("https://x.test/1.png", "https://x.test/2.png"), None)],
        ),
        ("prompt,images\nd,https://x.test/1.png | https://x.test/2.png\n,\n", "csv", None),
    ],
)
def test_inputs_parse_into_validated_requests(
    text: str, fmt: str, expected: list[tuple[object, ...]] | None
) -> None:
    requests = parse_requests(text, fmt=fmt)
    got = [(r.prompt, r.duration, r.ratio, r.images, r.key) for r in requests]
    if expected is None:  # the last row is blank and skipped
        assert got == [("d", 5, "16:9", ("https://x.test/1.png", "https://x.test/2.png"), None)]
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("text", "fmt", "line", "needle"),
    [
        ('{"prompt": "a"}\n[1, 2]\n', "jsonl", 2, "JSON object"),
        ('{"prompt": "a", "colour": "red"}\n', "jsonl", 1, "unknown field(s): colour"),
        ('{"duration": 5}\n', "jsonl", 1, "missing prompt"),
        ('{"prompt": "a", "duration": "five"}\n', "jsonl", 1, "invalid duration"),
        ("", "csv", 1, "header row"),
        ("prompt\na,extra\n", "csv", 2, "more cells than header columns"),
    ],
)
def test_bad_input_rows_name_their_line(text: str, fmt: str, line: int, needle: str) -> None:
    with pytest.raises(InputError) as info:
        parse_requests(text, source="in", fmt=fmt)
    assert info.value.line == line
    assert str(info.value).startswith(f"in:{line}: ")
    assert needle in str(info.value)


def test_input_files_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"prompt": "x"}\n')
    (tmp_path / "b.csv").write_text("\ufeffprompt\ny\n")  # a BOM from a spreadsheet
    (tmp_path / "c.txt").write_text("prompt\nz\n")
    assert [r.prompt for r in load_requests(tmp_path / "a.jsonl")] == ["x"]
    assert [r.prompt for r in load_requests(tmp_path / "b.csv")] == ["y"]
    with pytest.raises(InputError, match=r"expected a \.jsonl or \.csv file"):
        load_requests(tmp_path / "c.txt")
    with pytest.raises(InputError, match="cannot read"):
        load_requests(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="unknown input format"):
        parse_requests("", fmt="xml")


def learnt_estimator() -> Callable[[float], Estimate | None]:
    """Estimates of a policy that saw tasks finish at 40 to 80 s."""
    policy = PollPolicy.adaptive(seed=1)
    for age in range(40, 81, 2):
        policy.observe(running_at=float(age), finished_by=float(age), duration=5)
    return lambda created: policy.estimate(age=max(time.time() - created, 0.0), duration=None)


def test_plain_status_lines_say_when_the_task_will_likely_be_done() -> None:
    out = io.StringIO()
    reporter = Reporter(out)
    reporter.start(2, title="unit")
    reporter.status("a", "video_1", "queued", created=time.time())
    reporter.estimator = learnt_estimator()
    reporter.status("b", "video_2", "queued", created=time.time())
    reporter.status("c", "video_3", "queued")  # its creation time unknown
    lines = out.getvalue().splitlines()

    assert lines[1] == "[0/2] key=a id=video_1 is now queued"  # nothing learnt yet
    assert re.fullmatch(
        r"\[0/2\] key=b id=video_2 is now queued \(likely done in 1m\d\ds, 90 %: 1m\d\ds\)",
        lines[2],
    )
    assert lines[3] == "[0/2] key=c id=video_3 is now queued"
    estimate = reporter.estimate("b")
    assert estimate is not None
    assert 50 <= estimate.median <= 70
    assert estimate.median < estimate.p90 <= 85
    reporter.result(BatchResult(key="b", status="completed", task_id="video_2"))
    assert reporter.estimate("b") is None


def test_the_live_view_shows_the_estimates_per_task_and_for_the_batch() -> None:
    out = io.StringIO()
    reporter = RichReporter(out)
    reporter.estimator = learnt_estimator()
    reporter.start(3, title="unit")
    reporter.status("old", "video_1", "processing", created=time.time() - 70)
    reporter.status("new", "video_2", "queued", created=time.time())
    latest = reporter.in_flight()
    reporter.finish()
    text = out.getvalue()

    assert latest is not None
    new, old = reporter.estimate("new"), reporter.estimate("old")
    assert new is not None
    assert old is not None
    assert old.median < new.median  # 70 s old: little left
    assert latest[0].median == pytest.approx(new.median, abs=1.0)  # the batch: the last
    assert "in flight: the last likely done in" in text
    assert re.search(r"processing +old +likely done in \d+s, 90 %: \d+s", text)
    assert re.search(r"queued +new +likely done in 1m\d\ds, 90 %: 1m\d\ds", text)


@pytest.mark.parametrize(
    ("value", "shown"), [(0.4, "0s"), (42, "42s"), (185, "3m05s"), (3720, "1h02m"), (-3, "0s")]
)
def test_seconds_are_shown_in_the_largest_units(value: float, shown: str) -> None:
    assert seconds(value) == shown
