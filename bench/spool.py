"""Per-frame records that go to disk as they come, so a long many-user run keeps a flat memory.

A client appends one record per frame sent and per output shown: at 20 users and
30 fps that is over a million records an hour, ~0.4 KB each as Python objects. A
`Spool` keeps the newest `chunk` in memory and pickles full chunks to an anonymous
temporary file (gone when the spool is, even after a crash); reading it back
streams chunk by chunk. It is a drop-in for the lists clients append to.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any, Generic, TypeVar

T = TypeVar("T")
CHUNK = 4096  # records kept in memory before they are written out


class Spool(Generic[T]):
    def __init__(self, items: Iterable[T] = (), chunk: int = CHUNK) -> None:
        self.chunk = chunk
        self._buffer: list[T] = []
        self._file: IO[bytes] | None = None
        self._spilled = 0
        self.extend(items)

    def append(self, item: T) -> None:
        self._buffer.append(item)
        if len(self._buffer) >= self.chunk:
            self._spill()

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self.append(item)

    def __iadd__(self, items: Iterable[T]) -> Spool[T]:
        self.extend(items)
        return self

    def __len__(self) -> int:
        return self._spilled + len(self._buffer)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[T]:
        """Every record in the order appended; what is appended while iterating is not seen."""
        spilled, buffered = self._spilled, list(self._buffer)
        offset = read = 0
        while read < spilled:  # the iterator keeps its own offset: appends may spill between two of its steps
            assert self._file is not None
            self._file.seek(offset)
            chunk = pickle.load(self._file)
            offset = self._file.tell()
            read += len(chunk)
            yield from chunk
        yield from buffered

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (e.g. sent to another process) as its records, not as a file handle."""
        return (Spool, (list(self), self.chunk))

    def __repr__(self) -> str:
        return f"Spool({len(self)} records, {self._spilled} on disk)"

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="streambench-spool-")  # noqa: SIM115 - lives with the spool
        self._file.seek(0, 2)
        pickle.dump(self._buffer, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._spilled += len(self._buffer)
        self._buffer = []
