"""Developer tasks. ``nox -l`` lists them; ``nox -s tests`` runs the test suite."""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"  # nox.project.python_versions
nox.options.sessions = ["tests", "lint", "typecheck", "docs", "build"]
nox.options.reuse_existing_virtualenvs = True
# A missing interpreter is an error on CI (nox's default when $CI is set; .ci/run also
# passes --error-on-missing-interpreters) and a "skipped" session in nox's summary elsewhere,
# so that `nox -s tests` on a machine with one Python still runs what it can.

PACKAGE = "starvideos_async"
PYPROJECT = nox.project.load_toml("pyproject.toml")
#: Every Python the classifiers claim ("3.10", ..., "3.13"): each runs the whole suite.
PYTHONS = nox.project.python_versions(PYPROJECT)


@nox.session
@nox.parametrize(
    ["python", "loop"],
    [nox.param(python, "asyncio", id=python) for python in PYTHONS]
    # uvloop once, on the interpreter nox runs on (any machine has that one).
    + [nox.param(None, "uvloop", id="uvloop")],
)
def tests(session: nox.Session, loop: str) -> None:
    """Run the whole test suite under coverage (line coverage must stay >= 90%).

    ``nox -s tests`` runs it on every Python the classifiers claim and once on uvloop;
    ``nox -s "tests(3.11)"`` or ``nox -s "tests(uvloop)"`` runs one of them.
    """
    packages = ["-e", ".[test,redis]"]  # the Redis tests start a redis-server (see .ci/run)
    options = []
    if loop == "uvloop":
        packages.append("uvloop>=0.19")  # not a dependency of the SDK: this session's only
        options.append("--event-loop=uvloop")  # see tests/conftest.py
    session.install(*packages)
    # Each session keeps its coverage data in its own virtualenv: every run is measured
    # and reported (and must reach fail_under) on its own, and no session erases another's.
    data_file = Path(session.virtualenv.location, "coverage", ".coverage").resolve()
    data_file.parent.mkdir(exist_ok=True)
    env = {"COVERAGE_FILE": str(data_file)}
    session.run("coverage", "erase", env=env)
    session.run("coverage", "run", "-m", "pytest", *options, *session.posargs, env=env)
    session.run("coverage", "combine", "--quiet", env=env)
    # pytest options (``-- -k watch``) usually select part of the suite: no floor then
    floor = ["--fail-under=0"] if session.posargs else []
    session.run("coverage", "report", *floor, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on the package and on tests/typing (the API as users see it)."""
    session.install("-e", ".[test,redis]", "mypy>=1.11")
    session.run("mypy", "--strict", PACKAGE, "tests/typing")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation (Sphinx, furo, MyST); every warning is an error."""
    session.install("-e", ".[batch,docs,redis]")  # autodoc imports batch and redis
    options = ["-W", "--keep-going", "-b", "html"]
    session.run("sphinx-build", *options, "docs", "docs/_build/html", *session.posargs)


_CHECK_INSTALLED = """
import importlib.metadata as metadata
import pathlib
import sys

import starvideos_async

package = pathlib.Path(starvideos_async.__file__).parent
source = pathlib.Path(sys.argv[1], "starvideos_async").resolve()
assert package.resolve() != source, f"imported the source tree, not the wheel: {package}"
assert (package / "py.typed").is_file(), "py.typed is missing from the wheel"
plugins = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
assert plugins.get("starvideos_async") == "starvideos_async.testing._plugin", plugins
assert (package / "testing" / "_plugin.py").is_file(), "the pytest plugin is missing"
assert starvideos_async.__version__ == metadata.version("starvideos-async")
print(f"starvideos-async {starvideos_async.__version__} installed at {package}: ok")
"""


@nox.session(reuse_venv=False)
def build(session: nox.Session) -> None:
    """Build wheel and sdist, install the wheel in a fresh venv, and run the demo from it.

    Catches what only a real install shows: package data missing from the wheel
    (``py.typed``), a lost pytest plugin entry point, a broken console script.
    """
    import shutil
    from pathlib import Path

    checkout = Path.cwd()
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.install("build>=1.0")
    session.run("python", "-m", "build", "--outdir", str(dist))  # sdist, then wheel from it
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    session.log(f"built {wheel.name} and {sdist.name}")
    session.install(f"{wheel}[cli]")
    demo = tmp / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    with session.chdir(tmp):  # away from the checkout, so that the installed copy is imported
        session.run("python", "-c", _CHECK_INSTALLED, str(checkout))
        session.run(
            "starvideos", "demo", "--count", "6", "--failure-rate", "0", "--out-dir", str(demo)
        )
    videos = sorted((demo / "videos").glob("*.mp4"))
    if len(videos) != 6:
        session.error(f"the demo downloaded {len(videos)} videos, not 6")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against raw aiohttp and httpx loops (never part of the test run).

    ``nox -s bench`` runs every workload at full size (about 30 minutes);
    ``nox -s bench -- --quick`` is a smoke run; ``-- throughput --tasks 2000`` picks one.
    See benchmarks/README.md.
    """
    session.install(
        "-e", ".[redis]", "httpx>=0.27", "psutil>=5.9", "uvloop>=0.19", "pyinstrument>=4.6"
    )
    session.run("python", "benchmarks/run.py", *session.posargs)
