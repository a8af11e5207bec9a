"""The public surface: ``__all__`` lists exactly the public names, sorted, all documented."""

from __future__ import annotations

import inspect
import pathlib
import re
import types

import pytest

import starvideos_async

PUBLIC = starvideos_async.__all__
PACKAGE_DIR = pathlib.Path(starvideos_async.__file__).parent

#: The names issue 2 fixes as the contract; more may be added, none removed.
CONTRACT = {
    "AsyncStarVideos",
    "VideoRequest",
    "Video",
    "TaskStatus",
    "VideoTask",
    "StarVideosError",
    "InvalidRequestError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "MalformedResponseError",
    "TaskFailedError",
    "TaskTimeoutError",
}


def _isort_style(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then everything else."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def _is_class(obj: object) -> bool:
    """A class, not an alias such as ``Callable[[Video], None]`` (a ``type`` on 3.10)."""
    return inspect.isclass(obj) and not isinstance(obj, types.GenericAlias)


def test_all_is_sorted_without_duplicates() -> None:
    assert sorted(PUBLIC, key=_isort_style) == PUBLIC
    assert len(set(PUBLIC)) == len(PUBLIC)


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(starvideos_async).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(PUBLIC) == public | {"__version__"}


def test_all_holds_the_contract_of_issue_2() -> None:
    assert set(PUBLIC) >= CONTRACT


def test_every_public_error_derives_from_the_root() -> None:
    errors = [
        getattr(starvideos_async, name)
        for name in PUBLIC
        if _is_class(getattr(starvideos_async, name))
        and issubclass(getattr(starvideos_async, name), BaseException)
    ]
    assert len(errors) >= 17
    assert all(issubclass(e, starvideos_async.StarVideosError) for e in errors)


def _has_doc_comment(name: str) -> bool:
    """Data and type aliases are documented with a ``#:`` comment where they are defined."""
    pattern = re.compile(rf"^#:.*\n(?:#:.*\n)*{re.escape(name)}\b", re.MULTILINE)
    return any(pattern.search(path.read_text("utf-8")) for path in PACKAGE_DIR.glob("*.py"))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_documented(name: str) -> None:
    obj = getattr(starvideos_async, name)
    if name == "__version__":
        assert isinstance(obj, str)  # a dunder that documents itself
        return
    if _is_class(obj):
        doc = obj.__dict__.get("__doc__")  # its own, not one inherited from a base
    elif inspect.isfunction(obj):
        doc = obj.__doc__
    else:
        assert _has_doc_comment(name), f"{name} needs a '#:' comment where it is defined"
        return
    assert doc, f"{name} has no docstring"
    assert doc.strip().split("\n")[0].endswith("."), f"{name}'s summary line is not a sentence"


@pytest.mark.parametrize("name", [n for n in PUBLIC if _is_class(getattr(starvideos_async, n))])
def test_public_methods_and_properties_are_documented(name: str) -> None:
    cls = getattr(starvideos_async, name)
    missing = []
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        target = value.fget if isinstance(value, property) else value
        target = getattr(target, "__func__", target)
        if callable(target) and not inspect.getdoc(target):
            missing.append(attr)
    assert missing == []
