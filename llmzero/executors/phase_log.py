"""The wrapper a phase runs under on another machine: `python -m llmzero.executors.phase_log LOG -- ARGV...`.

Locally the search sends a phase's output to log.txt itself; a phase run by a cluster's job system has its
output captured by that system instead. This wrapper runs ARGV, appending every line it prints to LOG (the
phase directory's log.txt, read by the search, the error analyzer and the report) and echoing it to its own
stdout (so `ray job logs` shows it too), and exits with ARGV's status. A signal is passed on to the phase,
which then saves and ends gracefully; the wrapper stays until the phase has gone.

It imports nothing heavy: it starts before, and independently of, the phase's own imports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

USAGE = "usage: python -m llmzero.executors.phase_log LOG -- ARGV..."


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    log_path, command = args[0], args[2:]
    try:
        log = open(log_path, "a", encoding="utf-8", errors="replace")
    except OSError as exc:
        # The phase directory is not on this machine: the search would wait for files that never come.
        print(f"llmzero: cannot write {log_path} on {socket.gethostname()} ({exc.strerror}): the search directory "
              "must be on storage every worker mounts at the same path", flush=True)
        return 3

    def emit(text: str) -> None:
        log.write(text)
        log.flush()
        sys.stdout.write(text)
        sys.stdout.flush()

    emit(f"[llmzero] {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()} (pid {os.getpid()}): "
         f"{' '.join(command)}\n")
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 text=True, errors="replace", bufsize=1)
    except OSError as exc:
        emit(f"llmzero: cannot start {command[0]!r}: {exc}\n")
        return 127

    def forward(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    assert child.stdout is not None
    for line in child.stdout:
        emit(line)
    rc = child.wait()
    log.close()
    return rc if rc >= 0 else 128 - rc  # a phase killed by signal N exits 128+N, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
