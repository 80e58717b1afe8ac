"""`python -m entrypoints.bot`: the bot alone, for people used to the seed's two processes."""

import sys

from entrypoints.cli import main

sys.exit(main(["bot"]))
