"""What a failure means to the caller: bad input (InputError, exit code 2) or a runtime failure (1), the exit codes
every command returns, and the one line a runtime failure prints. Its own module so that the commands (runner,
serve, qps_search) and the CLI that dispatches to them share them without importing each other."""
from __future__ import annotations

import sys
import traceback

EXIT_OK, EXIT_RUNTIME, EXIT_INPUT = 0, 1, 2
EXIT_CODES = """exit codes:
  0  the run completed, VALID or INVALID alike (result.json and LoadGen's summary say which); with --also: every test
  1  runtime failure, worth retrying: the engine or an endpoint failed or died (result.json: "failed", why); with
     --also the failed test's result.json says so and the later tests are not run
  2  bad input, not retryable until fixed: a flag, file, path, permission or device problem
  143, 130  stopped by SIGTERM, SIGINT: the engine was stopped and the running test's result.json says "failed",
     "stopped by SIGTERM" (no engine process outlives the SUT, SIGKILL included)
failures print one line on stderr naming the problem and where to look; --debug adds the traceback"""


class InputError(Exception):
    """Bad input: the message names the file, field or flag and how to fix it."""


def print_failure(error: BaseException, debug: bool = False, where: str = "", note: str = "") -> None:
    """A runtime failure: one line that says what failed and where to look (the traceback only with --debug)."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    summary = "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__
    look = f"look at {where}" if where else ""
    hint = "; ".join(filter(None, [note, look, "" if debug else "--debug prints the traceback"]))
    print(f"error: run failed: {summary} ({hint})", file=sys.stderr, flush=True)
