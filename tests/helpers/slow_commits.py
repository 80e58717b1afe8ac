"""`python -m tests.helpers.slow_commits <flamepay command ...>`: the product's command with
a pause before each notify's commit (FLAMEPAY_TEST_COMMIT_DELAY_MS), so a drill can kill the
process while notifies are inside their transaction.

The pause is injected here, in the test process, through NotifyHandler's `before_commit`
(every app built in this process gets it: `web` with one worker and `run` both build it
here); the product reads no test variable.
"""

from __future__ import annotations

import os
import sys
import time

from entrypoints import web
from entrypoints.cli import main

DELAY_ENV = "FLAMEPAY_TEST_COMMIT_DELAY_MS"


def slow_notify_handlers(seconds: float) -> None:
    build = web.NotifyHandler.__init__

    def pause() -> None:
        time.sleep(seconds)

    def with_pause(self, app, before_commit=None) -> None:
        build(self, app, before_commit or pause)

    web.NotifyHandler.__init__ = with_pause  # type: ignore[method-assign]


if __name__ == "__main__":
    slow_notify_handlers(int(os.environ.get(DELAY_ENV, "0") or 0) / 1000)
    sys.exit(main(sys.argv[1:]))
