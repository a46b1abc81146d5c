"""Putting a finished index directory in place atomically (builds and shard splits share it).

A build writes into a temporary sibling directory; :func:`replace_dir` swaps it in with one
``renameat2(RENAME_EXCHANGE)`` where Linux offers it, so a reader never sees a missing or half index.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .layout import MANIFEST


def link_tree(src: Path, dst: Path) -> None:
    """``dst`` holds the files of ``src``: hard links where the file system has them, else copies."""
    dst.mkdir()
    for path in src.iterdir():
        try:
            os.link(path, dst / path.name)
        except OSError:
            shutil.copy2(path, dst / path.name)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def check_out(out: Path) -> None:
    """A build may write ``out``: it does not exist, or is an empty directory or an index."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory; choose another --out")
    if any(out.iterdir()) and not (out / MANIFEST).exists():
        raise FileExistsError(f"{out} exists and is not an amharic-search index; choose another --out")


def replace_dir(new: Path, out: Path) -> None:
    """Move ``new`` to ``out``. An existing index at ``out`` is exchanged with ``new`` atomically
    where the system allows (readers never see a missing index), else moved aside first."""
    if not out.exists():
        os.rename(new, out)
        return
    check_out(out)
    if exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # now holds the old index
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, old / "index")
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old / "index", out)
        raise
    shutil.rmtree(old, ignore_errors=True)
