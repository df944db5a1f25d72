"""`dfr apply ARGS` in this process, with where the time went written to $BENCH_STATS.

Used by `bench/run_all.py` as the child process of the apply benchmarks: the
same code path as the `dfr` console script (`reconciler.cli.run`), plus
timers around the state store's methods and the create-run POSTs:

- store_seconds: time spent inside Store.put/put_many/remove/checkpoint and
  the final checkpoint, summed over threads (thread-seconds);
- store_calls, and the time of the slowest tenth of puts (to see growth);
- first_post / last_post: seconds from the start of this process to the first
  and the last create-run request (start-up, then the submission phase);
- end: seconds from the start to the end of apply.

    BENCH_STATS=out.json python bench/apply_child.py apply --auto-approve DIR
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.api import client as client_module  # noqa: E402
from reconciler.state import backend  # noqa: E402

_lock = threading.Lock()
stats: dict[str, Any] = {"store_seconds": 0.0, "store_calls": 0, "put_seconds": []}
posts: list[float] = []


def _timed(name: str) -> None:
    original: Callable[..., Any] = getattr(backend.BaseStore, name)

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent = time.perf_counter() - began
            with _lock:
                stats["store_seconds"] += spent
                stats["store_calls"] += 1
                if name == "put":
                    stats["put_seconds"].append(spent)

    setattr(backend.BaseStore, name, timed)


for _name in ("put", "put_many", "remove", "checkpoint", "_close"):
    _timed(_name)

_create = client_module.DataframerClient.create_run


def _create_run(self: Any, body: Any) -> str:
    with _lock:
        posts.append(time.perf_counter() - START)
    return _create(self, body)


client_module.DataframerClient.create_run = _create_run  # type: ignore[method-assign]


def _record_learning() -> None:
    from reconciler.api import pacing

    original = pacing.Pacer.on_rate_limited

    def on_rate_limited(self: Any, sent_at: float | None = None) -> None:
        original(self, sent_at)
        with _lock:
            stats.setdefault("rates", []).append([round(time.perf_counter() - START, 3), self.rate])

    pacing.Pacer.on_rate_limited = on_rate_limited  # type: ignore[method-assign]


_record_learning()


def main() -> int:
    from reconciler.cli import run

    code = run(sys.argv[1:])
    end = time.perf_counter() - START
    puts = sorted(stats.pop("put_seconds"))
    tail = puts[int(len(puts) * 0.9) :] if puts else []
    out = {
        **stats,
        "puts": len(puts),
        "put_median_ms": 1000 * puts[len(puts) // 2] if puts else None,
        "put_p90_ms": 1000 * tail[0] if tail else None,
        "first_post": min(posts) if posts else None,
        "last_post": max(posts) if posts else None,
        "end": end,
        "post_times": [round(t, 3) for t in sorted(posts)],
        "exit": code,
    }
    target = os.environ.get("BENCH_STATS")
    if target:
        Path(target).write_text(json.dumps(out), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
