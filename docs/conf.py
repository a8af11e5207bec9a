"""Sphinx configuration: furo, MyST markdown, autodoc. Built with ``-W`` (warnings are errors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import starvideos_async

project = "starvideos-async"
author = "starvideos-async contributors"
copyright = "starvideos-async contributors"
release = starvideos_async.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# API reference: Google-style docstrings, attributes as fields of their class (no
# duplicate object descriptions), signatures in source order.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}
# Types of other projects (aiohttp, anyio, yarl) are not cross-referenced: there is no
# intersphinx (the build must work offline), and nitpicky mode stays off for them.
nitpicky = False

html_theme = "furo"
html_title = f"starvideos-async {release}"
html_static_path: list[str] = []

_API_PAGE = Path(__file__).parent / "api.md"


def _check_api_reference(app: Any) -> None:
    """Fail the build when a public name of the package is missing from ``api.md``."""
    from sphinx.util import logging

    text = _API_PAGE.read_text(encoding="utf-8")
    documented = set(re.findall(r"starvideos_async\.(\w+)", text))
    missing = sorted(set(starvideos_async.__all__) - documented - {"__version__"})
    if missing:
        logging.getLogger(__name__).warning(
            "api.md does not document: %s", ", ".join(missing), location="api"
        )


def setup(app: Any) -> None:
    """Register the API-reference completeness check."""
    app.connect("builder-inited", _check_api_reference)
