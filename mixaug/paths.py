"""Paths a command reads and writes, made safe: nothing the user did not name is lost.

- inputs are read only from regular files, with a size cap (a FIFO or ``/dev/zero``
  is refused instead of read forever);
- an output path never resolves to an input (``--out`` equal to ``--data`` is refused,
  with or without ``--overwrite``);
- a folder is replaced (``--overwrite``) only when a mixaug command wrote it: such
  folders carry a :data:`MARKER` file, and the old folder is swapped out whole, so
  nothing outside the named folder is ever deleted;
- :class:`RunLock` holds an OS lock on an output for a run's lifetime, so a second
  run on the same output is refused instead of interleaving its records.

Example:
    >>> with RunLock(Path("syn.jsonl")):  # doctest: +SKIP
    ...     ...  # write syn.jsonl and its side files
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from mixaug.errors import ConfigError, DataError, MixaugError

MARKER = ".mixaug-output"
"""File a mixaug command puts in every folder it writes (``--overwrite`` needs it)."""

MAX_INPUT_BYTES = 2 << 30
"""Largest data file read (2 GiB)."""

MAX_CONFIG_BYTES = 4 << 20
"""Largest config or spec file read (4 MiB)."""


class RunBusy(MixaugError):
    """Another mixaug run holds the lock on this output."""


def read_input(
    path: str | Path,
    what: str,
    *,
    limit: int = MAX_INPUT_BYTES,
    error: type[MixaugError] = DataError,
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Raises:
        error: naming ``what`` and the path, for a missing path, a folder, anything
            that is not a regular file (FIFO, device, socket) or a file over the cap.
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        msg = f"{what} {str(p)!r} does not exist; check the path."
        raise error(msg) from None
    except OSError as e:
        msg = f"{what} {str(p)!r} could not be read: {e.strerror}."
        raise error(msg) from None
    if stat.S_ISDIR(mode):
        msg = f"{what} {str(p)!r} is a folder; pass a file."
        raise error(msg)
    if not stat.S_ISREG(mode):
        msg = (
            f"{what} {str(p)!r} is not a regular file (a pipe, device or socket); "
            "save the content to a file and pass that."
        )
        raise error(msg)
    try:
        with p.open("rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as e:
        msg = f"{what} {str(p)!r} could not be read: {e.strerror}."
        raise error(msg) from None
    if len(raw) > limit:
        msg = f"{what} {str(p)!r} is larger than {limit:,} bytes; split it or pass a smaller file."
        raise error(msg)
    return raw


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def refuse_inputs(outputs: Mapping[str, Path], inputs: Mapping[str, str | Path | None]) -> None:
    """Refuse any output that is (or links to) an input file, ``--overwrite`` or not.

    Raises:
        ConfigError: naming both flags.
    """
    for out_flag, out in outputs.items():
        for in_flag, src in inputs.items():
            if src is not None and _same(Path(out), Path(src)):
                msg = (
                    f"{out_flag} {str(out)!r} is the same file as {in_flag} {str(src)!r}; "
                    "mixaug never writes over its inputs: choose another output path."
                )
                raise ConfigError(msg)


def check_out_file(raw: str | Path, flag: str = "--out") -> Path:
    """An output file path that can be written: not a folder, under a writable folder.

    ``raw`` is the path as given: one ending in a separator names a folder.

    Raises:
        ConfigError: for a folder (existing or spelt with a trailing separator), a
            FIFO, device or socket (only regular files are replaced), or a path under a
            regular file or an unwritable folder.
    """
    text = str(raw)
    out = Path(text)
    if out.is_dir() or text.endswith(("/", os.sep)):
        example = str(out / "records.jsonl")
        msg = f"{flag} {text!r} is a folder; give a file path such as {example!r}."
        raise ConfigError(msg)
    try:
        mode = os.stat(out).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        msg = (
            f"{flag} {text!r} is not a regular file (a pipe, device or socket); mixaug "
            "writes and replaces regular files only: choose another path."
        )
        raise ConfigError(msg)
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        msg = (
            f"Cannot write to {text!r}: {str(parent)!r} is not a writable folder; "
            f"choose another {flag}."
        )
        raise ConfigError(msg)
    return out


def check_side_files(paths: Iterable[Path]) -> None:
    """Refuse a run whose side files (summary, manifest, ...) exist as folders.

    Raises:
        ConfigError: naming the folder.
    """
    for p in paths:
        if p.is_dir():
            msg = (
                f"{str(p)!r} is a folder, but mixaug writes a file there; move it away or "
                "choose another --out."
            )
            raise ConfigError(msg)


def writable_folder(raw: str | Path, flag: str = "--out") -> Path:
    """The resolved folder ``raw``, which can be created or added to.

    Raises:
        ConfigError: for a file, a path under a file, or an unwritable parent.
    """
    out = Path(raw).expanduser().resolve()
    if out.exists() and not out.is_dir():
        msg = f"{flag} {str(raw)!r} is a file; give a folder."
        raise ConfigError(msg)
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        msg = f"{flag} {str(raw)!r} is under {str(parent)!r}, which is a file; give a folder."
        raise ConfigError(msg)
    if not os.access(parent, os.W_OK):
        msg = f"Cannot write to {str(raw)!r}: {str(parent)!r} is not writable."
        raise ConfigError(msg)
    return out


def refuse_inputs_inside(out: Path, inputs: Mapping[str, str | Path | None]) -> None:
    """Refuse an output folder that holds (or is) one of the inputs.

    Raises:
        ConfigError: naming the input.
    """
    for flag, value in inputs.items():
        if value is None:
            continue
        if Path(value).expanduser().resolve().is_relative_to(out):
            msg = (
                f"--out {str(out)!r} holds {flag} {str(value)!r}; mixaug never replaces a "
                "folder with its inputs in it: choose another --out."
            )
            raise ConfigError(msg)


def check_out_folder(raw: str | Path, flag: str = "--out", *, overwrite: bool = False) -> Path:
    """The resolved output folder, after checking it may be written (or replaced).

    A non-empty folder is refused unless ``overwrite``; with ``overwrite`` it must be
    a folder a mixaug command wrote (it holds :data:`MARKER`).

    Raises:
        ConfigError: for a file, a path under a file, a non-empty folder without
            ``overwrite``, or a folder mixaug did not write.
    """
    out = writable_folder(raw, flag)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            msg = f"{flag} {str(raw)!r} is not empty; pass --overwrite or choose another folder."
            raise ConfigError(msg)
        if not is_mixaug_folder(out):
            msg = (
                f"{flag} {str(raw)!r} (resolved: {str(out)!r}) was not written by mixaug, so "
                "--overwrite will not replace it; empty it yourself or choose another folder."
            )
            raise ConfigError(msg)
    return out


def bench_folder(raw: str | Path, inputs: Mapping[str, str | Path | None]) -> Path:
    """The resolved ``mixaug bench --out`` folder, checked: the bench resumes in its own.

    Refused: a folder that holds an input, or lies inside one (``--out DATA`` or
    ``--out DATA/results`` would write among the data), and a non-empty folder mixaug did
    not write. A bench folder from before the marker existed (its ``results.jsonl`` holds
    bench rows only) counts as mixaug's. The caller marks it once the run is under way.

    Raises:
        ConfigError: naming the problem.
    """
    out = writable_folder(raw)
    refuse_inputs_inside(out, inputs)
    for flag, value in inputs.items():
        if value is not None and out.is_relative_to(Path(value).expanduser().resolve()):
            msg = (
                f"--out {str(raw)!r} is inside {flag} {str(value)!r}; the bench never writes "
                "among its inputs: choose another --out."
            )
            raise ConfigError(msg)
    if (
        out.is_dir()
        and any(out.iterdir())
        and not (is_mixaug_folder(out) or _old_bench_folder(out))
    ):
        msg = (
            f"--out {str(raw)!r} is not empty and was not written by mixaug bench; the bench "
            "writes (and resumes) in a folder of its own: choose an empty or new one."
        )
        raise ConfigError(msg)
    return out


def _old_bench_folder(out: Path) -> bool:
    """Whether ``out`` is a bench folder written before the marker: bench rows only."""
    results = out / "results.jsonl"
    if not results.is_file() or results.is_symlink():
        return False
    try:
        lines = [x for x in results.read_text(encoding="utf-8").splitlines() if x.strip()]
        rows = [json.loads(x) for x in lines]
    except (OSError, ValueError):
        return False
    return bool(rows) and all(
        isinstance(r, dict) and {"settings", "method", "level", "seed"} <= set(r) for r in rows
    )


def is_mixaug_folder(path: Path) -> bool:
    """Whether a mixaug command wrote the folder ``path`` (it holds :data:`MARKER`)."""
    return (path / MARKER).is_file()


def mark_folder(path: Path, command: str) -> None:
    """Mark ``path`` as written by ``mixaug command``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text(f"written by mixaug {command}\n", encoding="utf-8")


def staging_folder(out: Path) -> Path:
    """A new empty folder beside ``out`` to build its replacement in."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))


def replace_folder(staged: Path, out: Path) -> None:
    """Put the finished folder ``staged`` at ``out``; an old ``out`` must be mixaug's.

    The old folder is renamed away first and deleted only after ``staged`` is in
    place, so a crash leaves either the old or the new folder at ``out``.
    """
    if out.exists() and any(out.iterdir()) and not is_mixaug_folder(out):
        msg = f"{str(out)!r} was not written by mixaug; it is left as it is."
        raise ConfigError(msg)
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(staged, out)
    if old is not None:
        shutil.rmtree(old)


LOCK_HEADER = b"mixaug run lock\n"
"""How a lock file mixaug made begins; a file at ``OUT.lock`` without it is the user's."""


class RunLock:
    """An exclusive OS lock (``flock``) on ``OUT.lock`` beside ``out``, for one run.

    The lock file is mixaug's own: written and locked under a temporary name, then
    linked into place only if nothing is there, or one a killed mixaug run left (marked,
    its ``flock`` free). A file at that
    path that mixaug did not make (a user's ``uv.lock`` beside ``--out uv``, an input) is
    never opened for writing, truncated or removed: the run is refused. The file is
    removed on release, and only while it is still the one this run made. Taking a lock
    that another live process holds raises :class:`RunBusy` at once.
    """

    def __init__(self, out: Path) -> None:
        self.path = out.with_name(out.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock.

        Raises:
            RunBusy: when another process holds it.
            DataError: when ``OUT.lock`` is a file mixaug did not make.
        """
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = self._create()
            if fd is None:  # (fd 0 is a real descriptor where stdin is closed)
                fd = self._open_existing()
            if fd is None:
                continue  # removed meanwhile: try again
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                msg = (
                    f"Another mixaug run is writing {str(self.path.with_suffix(''))!r} (it "
                    f"holds {str(self.path)!r}); wait for it to finish, or choose another --out."
                )
                raise RunBusy(msg) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file the previous holder removed meanwhile
                self._fd = fd
                return self
            os.close(fd)

    def _create(self) -> int | None:
        """A new lock file, locked, put in place only if nothing is there (``link``)."""
        import fcntl

        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            os.write(fd, LOCK_HEADER + f"pid {os.getpid()}\n".encode())
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                os.link(tmp, self.path)  # atomic, and never over an existing file
            except FileExistsError:
                os.close(fd)
                return None
            return fd
        finally:
            os.unlink(tmp)

    def _open_existing(self) -> int | None:
        """The lock file a mixaug run made (held, or left by a killed run); read-only."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError:  # a symlink, a folder, a FIFO, ...: not mixaug's
            raise self._foreign() from None
        import stat

        if (
            not stat.S_ISREG(os.fstat(fd).st_mode)
            or os.pread(fd, 64, 0)[: len(LOCK_HEADER)] != LOCK_HEADER
        ):
            os.close(fd)
            raise self._foreign()
        return fd

    def _foreign(self) -> DataError:
        msg = (
            f"{str(self.path)!r} exists and is not a mixaug lock file; mixaug keeps a run's "
            "lock there and never touches a file it did not make. Move that file, or choose "
            "another --out."
        )
        return DataError(msg)

    def release(self) -> None:
        """Drop the lock and remove its file (only if it is still the one this run holds)."""
        if self._fd is None:
            return
        try:
            try:
                mine = os.fstat(self._fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                mine = False
            if mine:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class LockSet:
    """Locks a command takes as it goes, all released when the command ends.

    Example:
        >>> with LockSet() as locks:  # doctest: +SKIP
        ...     locks.take(Path("syn.jsonl"))
    """

    def __init__(self) -> None:
        self._held: list[RunLock] = []

    def take(self, out: Path) -> None:
        """Lock ``out`` (see :class:`RunLock`).

        Raises:
            RunBusy: when another process holds it.
        """
        self._held.append(RunLock(out).acquire())

    def __enter__(self) -> LockSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._held:
            self._held.pop().release()
