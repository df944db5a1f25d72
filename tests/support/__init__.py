"""What the test suites share, outside the shipped package.

- `fixtures`: the pytest plugin (`emu`, `ws`, `dfr`, `start_emulator`, `workspace`, `clock`),
  loaded by `pytest_plugins` in tests/conftest.py;
- `workspace`: `Workspace`, the test's folder, and the manifest builders;
- `runner`: dfr in this process or as a process (a pseudo-terminal too) -> `Result`;
- `emulators`: the emulator in this process or as a process, the tests' API key,
  and what an emulator saw;
- `clocks`: a fake clock for unit tests of what waits;
- `crashing_dfr.py`: dfr with a crash point armed, for the crash tests (a script).
"""
