"""`python -m entrypoints <command>`: the `flamepay` command without the installed script
(`python -m entrypoints web`, `python -m entrypoints bot` for the seed's two processes).

The one `__main__` of the product: no module imports the command line back, so the entry
points form no import circle (tests/unit/test_architecture.py checks it)."""

import sys

from entrypoints.cli import main

sys.exit(main())
