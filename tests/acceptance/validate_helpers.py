"""What the `dfr validate` tests share: a manifest in a fixed layout and a result."""

from __future__ import annotations

import re

SPEC_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def manifest(name: str, extra: str = "", samples: str = "100") -> str:
    """Lines: 1 apiVersion .. 5 spec:, 6 spec_id, 7 spec_version, 8 number_of_samples, 9+ extra."""
    return (
        "apiVersion: dataframer.ai/v1\nkind: GenerationRun\n"
        f"metadata:\n  name: {name}\n"
        # Pinned, so that the only warnings are the ones a test is about.
        f"spec:\n  spec_id: {SPEC_ID}\n  spec_version: 1\n  number_of_samples: {samples}\n"
        f"{extra}"
    )


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def diagnostics(self) -> list[str]:
        return [line for line in self.err.splitlines() if re.match(r"^.+:\d+:\d+: \w+: ", line)]

    @property
    def summary(self) -> str:
        return self.err.splitlines()[-1] if self.err else ""
