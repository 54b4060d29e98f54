"""Whether a directory's file system takes O_DIRECT writes (ext4 does; tmpfs since
Linux 6.6; some FUSE never): tests of ``disk.DirectWriter`` assert the direct path
where it is possible, and the same bytes either way."""

from __future__ import annotations

import os
from pathlib import Path

from monctl.adapters import disk


def accepts_direct(directory: Path) -> bool:
    path = directory / ".direct-probe"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    buffer = disk._buffers.take()
    try:
        os.write(fd, memoryview(buffer)[: disk.ALIGN])
    except OSError:
        return False
    finally:
        disk._buffers.give(buffer)
        os.close(fd)
        path.unlink()
    return True
