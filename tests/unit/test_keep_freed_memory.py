"""The API process asks glibc to keep freed memory for reuse (booking.serving)."""

from __future__ import annotations

import platform
import sys

from booking.serving import keep_freed_memory


def test_the_allocator_keeps_freed_memory_under_glibc() -> None:
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc
    # Large buffers come and go as a lookup's do; nothing breaks, the value is the same.
    for _ in range(3):
        chunk = b"x" * (1 << 20)
        assert len(chunk + chunk) == 2 << 20
