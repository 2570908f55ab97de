"""Recursive image scan with an on-disk file-list cache.

Scanning ImageNet's train folder (1.3M files) takes minutes on network storage, so the
list is written once to ``<cache_dir>/filelists/<sha1 of the absolute root>.txt`` (default
``cache_dir``: ``$PCONV_CACHE_DIR`` or ``~/.cache/pconv_lightning``) and read back at later
starts. The cache is reused while its fingerprint matches: the modification times of the root
and of every top-level entry the list names (a new file in an ImageNet class folder changes
that folder's time). Changes deeper than one level are not detected: pass ``rescan=True``
or delete the cache file. Processes that scan at once (the ranks of several nodes sharing a
home folder) each write their own temporary file and rename it onto the cache: the last one
wins, and a reader only ever sees a complete list.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import numpy as np

from pconv_lightning.errors import MissingInputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_HEADER = "# pconv-filelist v1 "


def default_cache_dir() -> Path:
    """``$PCONV_CACHE_DIR`` if set, else ``~/.cache/pconv_lightning``."""
    return Path(os.environ.get("PCONV_CACHE_DIR", Path.home() / ".cache" / "pconv_lightning"))


class FileList:
    """The image files under ``root``, as sorted relative paths in one compact numpy array.

    Storing bytes in a numpy array (not a list of str) keeps the list small and avoids the
    copy-on-access memory growth of Python objects in forked DataLoader workers.
    """

    def __init__(self, root: str | Path, relative: np.ndarray) -> None:
        self.root = Path(root)
        self._relative = relative
        self.label = str(self.root)  # what messages call this list: its folder(s)

    def __len__(self) -> int:
        return len(self._relative)

    def __getitem__(self, index: int) -> str:
        return str(self.root / self._relative[index].decode())

    @classmethod
    def concat(cls, lists: list[FileList]) -> FileList:
        """One list of every file of ``lists``, in order (paths kept absolute)."""
        if len(lists) == 1:
            return lists[0]
        paths = [
            str(f.root.resolve() / rel.decode()).encode() for f in lists for rel in f._relative
        ]
        joined = cls(Path("/"), np.array(paths, dtype=np.bytes_))
        joined.label = ", ".join(str(f.root) for f in lists)
        return joined

    def limit(self, count: int | None) -> FileList:
        """At most ``count`` files, evenly spread over the sorted list (all classes stay)."""
        if count is None or count >= len(self):
            return self
        limited = FileList(self.root, self._relative[spread(len(self), count)])
        limited.label = self.label
        return limited


def spread(length: int, count: int) -> np.ndarray:
    """``count`` distinct indices evenly spread over ``range(length)``, ``count <= length``."""
    if count < 1:
        raise ValueError(f"a sample limit must be >= 1, got {count}")
    return np.linspace(0, length - 1, count).round().astype(np.int64)


def scan_images(root: Path) -> list[str]:
    """Sorted paths relative to ``root`` of every JPEG/PNG/WebP file below it (any case)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(name if rel_dir == "." else f"{rel_dir}/{name}")
    return sorted(found)


def _fingerprint(root: Path, relative: list[str]) -> str:
    tops = sorted({p.split("/", 1)[0] for p in relative})
    stamps = [os.stat(root).st_mtime_ns] + [os.stat(root / top).st_mtime_ns for top in tops]
    return hashlib.sha1(repr(stamps).encode()).hexdigest()


def cache_path(root: Path, cache_dir: Path) -> Path:
    """Where the file list of ``root`` is cached."""
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()
    return cache_dir / "filelists" / f"{key}.txt"


def _read_cache(root: Path, path: Path) -> list[str] | None:
    try:
        header, *relative = path.read_text(encoding="utf-8").splitlines()
        if header == _HEADER + _fingerprint(root, relative):
            return relative
    except (OSError, ValueError):
        pass
    return None


def load_file_list(
    root: str | Path, cache_dir: str | Path | None = None, rescan: bool = False
) -> FileList:
    """The images under ``root``, from the cache when it is fresh, else scanned and cached.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        ValueError: ``root`` holds no JPEG/PNG/WebP file.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MissingInputError(f"image folder {root} does not exist or is not a directory")
    cached = cache_path(root, Path(cache_dir) if cache_dir else default_cache_dir())
    relative = None if rescan else _read_cache(root, cached)
    if relative is None:
        relative = scan_images(root)
        if relative:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{socket.gethostname()}-{os.getpid()}.tmp")
            lines = [_HEADER + _fingerprint(root, relative), *relative]
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.replace(cached)
    if not relative:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise ValueError(f"no images ({exts}, any case) found under {root}")
    return FileList(root, np.array([p.encode() for p in relative], dtype=np.bytes_))
