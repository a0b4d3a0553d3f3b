"""A minimal OLE compound file (CFB version 3) writer, so the .msg tests can build their own fixtures.

No library on PyPI writes a new compound file (olefile only rewrites streams in place), so this follows
[MS-CFB]: 512-byte sectors, a FAT, a directory, and streams under 4096 bytes in the mini stream. Siblings are
chained to the right in the directory's sort order (a valid, if unbalanced, tree).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Mapping
from typing import Union

Tree = Mapping[str, Union[bytes, "Tree"]]

SECTOR, MINI, CUTOFF = 512, 64, 4096
FREE, END, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def _key(name: str) -> tuple[int, str]:
    return len(name), name.upper()


def write_cfb(tree: Tree) -> bytes:
    # Directory entries: [name, type, data, child, right, start, size]; entry 0 is the root.
    entries: list[list[object]] = [["Root Entry", 5, b"", NOSTREAM, NOSTREAM, END, 0]]

    def add(storage: Tree) -> int:
        ids = []
        for name in sorted(storage, key=_key):
            value = storage[name]
            index = len(entries)
            entries.append([name, 2 if isinstance(value, bytes) else 1, value if isinstance(value, bytes) else b"",
                            NOSTREAM, NOSTREAM, END, 0])  # fmt: skip
            if not isinstance(value, bytes):
                entries[index][3] = add(value)
            ids.append(index)
        for left, right in itertools.pairwise(ids):
            entries[left][4] = right
        return ids[0] if ids else NOSTREAM

    entries[0][3] = add(tree)
    mini = bytearray()
    minifat: list[int] = []
    big: list[tuple[int, bytes]] = []
    for index, entry in enumerate(entries):
        data = entry[2]
        assert isinstance(data, bytes)
        if entry[1] != 2:
            continue
        entry[6] = len(data)
        if len(data) < CUTOFF:
            first = len(mini) // MINI
            count = max(1, -(-len(data) // MINI))
            entry[5] = first
            minifat.extend([*range(first + 1, first + count), END])
            mini += data.ljust(count * MINI, b"\x00")
        else:
            big.append((index, data))

    def secs(n: int) -> int:
        return -(-n // SECTOR)

    dir_secs = secs(len(entries) * 128)
    minifat_secs = secs(len(minifat) * 4)
    mini_secs = secs(len(mini))
    big_secs = [secs(len(d)) for _, d in big]
    data_secs = dir_secs + minifat_secs + mini_secs + sum(big_secs)
    fat_secs = 1
    while fat_secs * 128 < fat_secs + data_secs:
        fat_secs += 1
    assert fat_secs <= 109
    fat = [FATSECT] * fat_secs
    chains: list[int] = []

    def chain(count: int) -> int:
        if count == 0:
            return END
        first = len(fat)
        fat.extend([*range(first + 1, first + count), END])
        chains.append(first)
        return first

    dir_start = chain(dir_secs)
    minifat_start = chain(minifat_secs)
    entries[0][5] = chain(mini_secs)
    entries[0][6] = len(mini)
    for (index, _), count in zip(big, big_secs, strict=True):
        entries[index][5] = chain(count)
    fat.extend([FREE] * (fat_secs * 128 - len(fat)))

    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", bytes.fromhex("D0CF11E0A1B11AE1"), b"", 0x3E, 3, 0xFFFE, 9, 6,
                         b"", 0, fat_secs, dir_start, 0, CUTOFF, minifat_start if minifat_secs else END,
                         minifat_secs, END, 0)  # fmt: skip
    header += struct.pack("<109I", *(list(range(fat_secs)) + [FREE] * (109 - fat_secs)))
    directory = bytearray()
    for name, kind, _, child, right, start, size in entries:
        assert isinstance(name, str)
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        directory += struct.pack("<64sHBBIII16sIQQIQ", encoded, len(encoded), kind, 1, NOSTREAM, right, child,
                                 b"", 0, 0, 0, start, size)  # fmt: skip
    unused = struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM, b"", 0, 0, 0, 0, 0)
    directory += unused * ((dir_secs * SECTOR - len(directory)) // 128)
    body = struct.pack(f"<{len(fat)}I", *fat)
    body += directory
    body += struct.pack(f"<{len(minifat)}I", *minifat).ljust(minifat_secs * SECTOR, b"\xff")
    body += bytes(mini).ljust(mini_secs * SECTOR, b"\x00")
    for (_, data), count in zip(big, big_secs, strict=True):
        body += data.ljust(count * SECTOR, b"\x00")
    return header + body
