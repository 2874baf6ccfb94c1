"""``python -m numerics.cli``: the ``wickode`` command line."""

import sys

from numerics.cli import main

sys.exit(main())
