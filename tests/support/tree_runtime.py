"""A fake runtime whose volumes are real directories (the outer edge: the engine's
archive API), for tests and benches that compare what comes back with a real tree."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

from monctl.services.model import Service
from support.fake_runtime import FakeRuntime


class TreeRuntime(FakeRuntime):
    """The fake runtime whose volumes are real directories, read as the engine's
    archive API reads them: a tar of the directory, named after its basename."""

    def __init__(self, trees: dict[str, Path]) -> None:
        super().__init__(urls={name: "http://127.0.0.1:9" for name in trees})
        self.trees = trees

    def read_data(self, service: Service, path: str) -> Iterator[bytes]:
        assert service.data is not None and path.rstrip("/") == service.data.path
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(self.trees[service.name], arcname=path.rstrip("/").rsplit("/", 1)[-1])
        data = buf.getvalue()
        return iter([data[i : i + 65536] for i in range(0, len(data), 65536)])
