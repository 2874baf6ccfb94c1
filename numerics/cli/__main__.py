"""``python -m numerics.cli``: the ``wickode`` command line."""

import sys

from . import main

sys.exit(main())
