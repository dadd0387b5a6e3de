"""``python -m companion.llm record``: write the recorded responses."""

import sys

from companion.llm.record import main

sys.exit(main())
