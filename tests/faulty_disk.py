"""A FAKE filesystem fault: run `python -m llmzero` with the search directory turning read-only (EROFS) or
full (ENOSPC) after its journal has been saved N times.

Real faults need root-only tricks (a tiny tmpfs, a remount), and as root (CI) permission bits do not
stop a write, so the fault is injected at the Python calls the search writes through: from then on
every write-mode open, rename or link under the directory fails with the chosen errno, as the kernel
would make it fail.

    python tests/faulty_disk.py EROFS 4 <search dir> [llmzero overrides...]
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import runpy
import sys


def main() -> None:
    code, after, root = getattr(errno, sys.argv[1]), int(sys.argv[2]), os.path.abspath(sys.argv[3])
    saves = 0
    real_open, real_replace, real_link, real_os_open = builtins.open, os.replace, os.link, os.open

    def tripped(path: object) -> bool:
        return saves >= after and os.path.abspath(str(path)).startswith(root)

    def fail(path: object) -> OSError:
        return OSError(code, os.strerror(code), str(path))

    def replace(src, dst, *a, **k):
        nonlocal saves
        if str(dst).endswith("tree.json"):
            saves += 1
        if tripped(dst):
            raise fail(dst)
        return real_replace(src, dst, *a, **k)

    def link(src, dst, *a, **k):
        if tripped(dst):
            raise fail(dst)
        return real_link(src, dst, *a, **k)

    def open_(file, mode="r", *a, **k):
        if isinstance(file, (str, os.PathLike)) and any(m in mode for m in "wax+") and tripped(file):
            raise fail(file)
        return real_open(file, mode, *a, **k)

    def os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and tripped(path):
            raise fail(path)
        return real_os_open(path, flags, *a, **k)

    os.replace, os.link, builtins.open, io.open, os.open = replace, link, open_, open_, os_open
    sys.argv = ["llmzero", f"search.dir={root}", *sys.argv[4:]]
    runpy.run_module("llmzero", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
