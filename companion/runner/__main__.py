"""``python -m companion.runner``: see :mod:`companion.runner.cli`."""

from companion.runner.cli import main

main()
