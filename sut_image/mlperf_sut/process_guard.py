"""No engine process outlives the SUT, however the SUT ends; a stopped run says so in its result.json.

vLLM starts its engine core (and, on the CPU, a worker under it and multiprocessing's resource tracker) as child
processes that neither watch their parent nor die with it: after a SIGTERM or SIGKILL of the SUT they were
reparented to PID 1 and still running 75 s later (on a GPU host they keep the GPU, and the next run fails to
allocate). Two parts, both set up by `python -m mlperf_sut run|search-qps|serve` itself:

* `guard_children()` forks a watchdog before anything else starts. Every POLL_S seconds it notes the SUT's
  descendants (by /proc, however vLLM starts them: fork or spawn, from any thread); once the SUT is gone, by any
  signal SIGKILL included, it gives what it left LEFT_GRACE_S to exit by itself, then SIGTERM (vLLM's engine core
  shuts down on it), then SIGKILL after KILL_GRACE_S. It ignores SIGTERM and SIGINT: a terminal's Ctrl-C reaches the
  whole process group, and the watchdog must outlive the SUT to clean up after it.
* `stop_on_signals()`: SIGTERM and SIGINT stop the run on a thread of their own. A Python signal handler runs only
  on the main thread, between bytecodes, and LoadGen's StartTest holds the main thread in C++ for the whole test, so
  the signal is taken from a wakeup file descriptor instead. The callbacks given to `on_stop` record the stop (the
  running test's result.json: failed, "stopped by SIGTERM") and stop the engine; then the process exits
  128 + the signal's number (SIGTERM 143, SIGINT 130). Any other thread that would write a result or stop the engine
  meanwhile waits in `park_if_stopping` for the exit.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_S = 0.5            # how often the watchdog notes the SUT's descendants
LEFT_GRACE_S = 1.0      # what the SUT left gets this long to exit by itself (the resource tracker, after the engine)
KILL_GRACE_S = 3.0      # then SIGTERM, and SIGKILL after this
STOP_GRACE_S = 8.0      # a signal's stop of the engine (the local runner SIGKILLs the group 10 s after its SIGTERM)

_stops: list[Callable[[str], None]] = []
_stopper: threading.Thread | None = None
_wakeup: tuple[socket.socket, socket.socket] | None = None     # kept open for the process's life


# ------------------------------------------------------------------------------------------------------------------
# the watchdog


def guard_children() -> int:
    """Fork the watchdog of this process's descendants (call it first: a fork is safe only before threads exist);
    returns the watchdog's pid."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        _watch(parent)
    except BaseException:   # noqa: BLE001 - said, never passed on: the watchdog must not run the SUT's code
        traceback.print_exc()
    finally:
        os._exit(0)


def _watch(parent: int) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)             # stderr stays: what the watchdog had to stop is said there
    me = os.getpid()
    seen: dict[int, str] = {}       # pid -> start time (a pid the kernel gives again is another process)
    while os.getppid() == parent:
        table = _processes()
        seen = {pid: start for pid, start in seen.items() if table.get(pid, (0, ""))[1] == start}
        seen.update((pid, table[pid][1]) for pid in _descendants(table, {parent}) if pid != me)
        time.sleep(POLL_S)
    left = _alive(seen, me)
    deadline = time.monotonic() + LEFT_GRACE_S
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _alive(seen, me)
    if not left:
        return
    names = ", ".join(f"{_name(pid)} (pid {pid})" for pid in sorted(left))
    print(f"mlperf_sut: the SUT (pid {parent}) has ended; stopping what it left running: {names}", file=sys.stderr,
          flush=True)
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 2.0)):
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = _alive(seen, me)
        if not left:
            return


def _alive(seen: dict[int, str], me: int) -> list[int]:
    """The noted processes still running (the same ones: their start time), and any they started since."""
    table = _processes()
    alive = {pid for pid, start in seen.items() if table.get(pid, (0, ""))[1] == start}
    return sorted(pid for pid in alive | set(_descendants(table, alive)) if pid != me)


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every live process (zombies hold nothing and are left out)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()     # after "pid (comm)": state ppid ... starttime
            if fields[0] not in ("Z", "X"):
                table[int(entry)] = (int(fields[1]), fields[19])
        except (OSError, IndexError, ValueError):    # gone meanwhile
            continue
    return table


def _descendants(table: dict[int, tuple[int, str]], roots: set[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()[:80] or "?"
    except OSError:
        return "?"


# ------------------------------------------------------------------------------------------------------------------
# SIGTERM and SIGINT


def stop_on_signals() -> None:
    """Take SIGTERM and SIGINT on a thread of their own (call it on the main thread, before the engine starts)."""
    global _wakeup
    _wakeup = reader, writer = socket.socketpair()
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: None)     # the C handler writes the number to the wakeup fd; nothing else to do
    # A child that vLLM forks (its engine core, where it forks) inherits the descriptor: it must not report its own
    # signals as this process's (vLLM stops its engine core with SIGTERM). Only one that reached the child in the
    # instant between fork and this hook still would.
    os.register_at_fork(after_in_child=lambda: signal.set_wakeup_fd(-1))
    threading.Thread(target=_wait_for_signal, args=(reader,), name="stop-on-signal", daemon=True).start()


def on_stop(callback: Callable[[str], None]) -> None:
    """`callback(signal name)` runs on the signal's thread, before the process exits."""
    _stops.append(callback)


def stopping() -> bool:
    return _stopper is not None


def park_if_stopping() -> None:
    """Where a thread would write a result or stop the engine: while a signal's stop runs, wait for it to end the
    process instead (the stop's own thread goes on)."""
    if _stopper is not None and threading.current_thread() is not _stopper:
        threading.Event().wait()


def _wait_for_signal(reader: socket.socket) -> None:
    global _stopper
    while (signum := reader.recv(1)[0]) not in STOP_SIGNALS:   # another signal with a Python handler: not ours
        pass
    _stopper = threading.current_thread()
    name = signal.Signals(signum).name
    print(f"error: stopped by {name}: stopping the engine; the running test's result.json says so", file=sys.stderr,
          flush=True)
    try:
        for callback in _stops:
            callback(name)
    except BaseException:   # noqa: BLE001 - the exit below must happen whatever the stop did
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(128 + signum)
