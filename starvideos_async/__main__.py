"""``python -m starvideos_async``: the ``starvideos`` command line."""

import sys

from ._cli import main

sys.exit(main())
