"""Running the same call in many threads released together: the concurrency drills' tool."""

from __future__ import annotations

import threading
from collections.abc import Callable


def race(n: int, fn: Callable[[int], object]) -> list[object]:
    """Run fn(i) in n threads released together by a barrier; results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait(10)
        try:
            results[i] = fn(i)
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results
