"""Developer tasks. ``nox -l`` lists them; ``nox -s tests`` runs the test suite."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PACKAGE = "starvideos_async"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite under coverage (line coverage must stay >= 90%)."""
    session.install("-e", ".[test]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and on tests/typing (the API as users see it)."""
    session.install("-e", ".[test]", "mypy>=1.11")
    session.run("mypy", "--strict", PACKAGE, "tests/typing")
