"""``python -m companion.versioning STAGE``: run one stage of the workspace pipeline."""

from companion.versioning.stages import main

main()
