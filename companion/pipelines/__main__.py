"""``python -m companion.pipelines step NAME ...``: run one step (see :mod:`.cli`)."""

import sys

from companion.pipelines.cli import main

sys.exit(main())
