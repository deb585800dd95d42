"""A real, small file system for the disk-full and read-only tests: a tmpfs of a few megabytes
mounted under the test's tmp_path (root only; the test is skipped where mounting is not
permitted), filled up with a ballast file to provoke ENOSPC, remounted read-only for EROFS."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BALLAST = "ballast.bin"  # the one file the tests fill the disk with; never an index file


@contextmanager
def tmpfs(mountpoint: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a tmpfs of `size` at `mountpoint` for the block; skip the test where that is not
    permitted (not root, no CAP_SYS_ADMIN, no `mount`)."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def fill(directory: Path) -> int:
    """Write the ballast file in `directory` until the disk is full to the byte; returns its
    size. Appends to an existing ballast."""
    fd = os.open(directory / BALLAST, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for block in (1 << 16, 4096, 512, 1):
            chunk = b"\0" * block
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def free(directory: Path, nbytes: int | None = None) -> None:
    """Give back `nbytes` of the ballast (all of it when None)."""
    ballast = directory / BALLAST
    if nbytes is None:
        ballast.unlink(missing_ok=True)
    else:
        os.truncate(ballast, max(0, ballast.stat().st_size - nbytes))


def remount(mountpoint: Path, mode: str) -> None:
    """Remount the tmpfs at `mountpoint` `ro` or `rw`."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mountpoint)], check=True)


def temp_files(directory: Path) -> list[str]:
    """Temporary files of writers (`.NAME.PID.tmp`, and SQLite's beside one) in `directory`."""
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name)


def listing(directory: Path) -> dict[str, tuple[int, int]]:
    """`name → (size, mtime_ns)` of every file in `directory` but the ballast."""
    return {
        p.name: (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.iterdir())
        if p.name != BALLAST
    }
