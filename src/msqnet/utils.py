"""Small shared helpers: atomic file and folder writes, reading users' text files with errors that name them,
strict JSON, and quoting users' values in error messages."""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import reprlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "InputFileError",
    "WriteError",
    "atomic_write_bytes",
    "atomic_write_text",
    "FolderMark",
    "check_replaceable",
    "atomic_folder",
    "fsync_dir",
    "read_text",
    "read_csv_rows",
    "csv_data_rows",
    "read_json",
    "finite_or_none",
    "json_text",
    "quote",
]


class InputFileError(ValueError):
    """A user's file is not the text it should be: ``<file>:<line>: <what>; expected <what>``.

    Args:
        path: the file.
        line: 1-based line of the problem, ``None`` for the whole file.
        what: what is wrong.
        expected: what was expected instead.
    """

    def __init__(self, path: str | os.PathLike, line: int | None, what: str, expected: str) -> None:
        self.path, self.line, self.what, self.expected = str(path), line, what, expected
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {what}; expected {expected}")


# The one rule for quoting a user's value in a message: an excerpt, never the whole value. A config
# value, a CSV field or an override may be megabytes long, and a YAML alias bomb expands to gigabytes:
# quoted in full it would make a message (and the memory to build it) as large. ``reprlib`` bounds the
# work as well as the result: it looks at no more than the first few items and characters.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother = 3, 60, 60
_QUOTE.maxtuple = _QUOTE.maxlist = _QUOTE.maxset = _QUOTE.maxfrozenset = _QUOTE.maxdeque = 6
_QUOTE.maxdict = 4
QUOTE_LIMIT = 80


def quote(value: Any) -> str:
    """A short ``repr`` of a user's value for an error message (at most ``QUOTE_LIMIT`` characters, cut with
    ``...``): every message that quotes user data quotes it through this."""
    text = _QUOTE.repr(value)
    if len(text) > QUOTE_LIMIT:
        text = text[: QUOTE_LIMIT - 3] + "..."
    return text


class WriteError(OSError):
    """Writing a file or folder failed (a full disk, a file size limit, ...); the message names the
    destination the caller asked for (never a temporary name) and says that what was there is kept."""

    def __init__(self, code: int | None, reason: str, path: str | os.PathLike) -> None:
        self.reason = reason
        super().__init__(code, f"{reason} while writing it; nothing there was replaced", str(path))


def _write_failed(e: OSError, path: str | os.PathLike) -> WriteError:
    """``e`` (raised writing ``path`` or a temporary file for it) as a WriteError naming ``path``."""
    reason = e.reason if isinstance(e, WriteError) else (e.strerror or str(e))
    return WriteError(e.errno, reason, path)


# The errors of a write that ran out of room (disk, quota, file size limit) or failed on the device.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO})


def _refuse_folder(path: Path) -> None:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a folder", str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to ``path`` via a temp file in the same folder and ``os.replace``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to ``path`` via a temp file in the same folder, fsync and ``os.replace``.

    A folder at ``path`` is refused (IsADirectoryError naming it); a write that runs out of room (a full
    disk, a file size limit) is a WriteError naming ``path``.
    """
    path = Path(path)
    _refuse_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if e.errno in _WRITE_ERRNOS:
            raise _write_failed(e, path) from None
        raise
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (renames, new files) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class FolderMark:
    """How msqnet recognises a folder it wrote itself: ``file`` in it is a JSON object whose ``key``
    is ``value``. ``what`` names such a folder in refusals ("a model checkpoint")."""

    file: str
    key: str
    value: str
    what: str

    def on(self, folder: str | os.PathLike) -> bool:
        """Whether ``folder`` carries this mark."""
        try:
            doc = json.loads((Path(folder) / self.file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(doc, dict) and doc.get(self.key) == self.value


def check_replaceable(target: str | os.PathLike, mark: FolderMark) -> None:
    """The one rule for replacing a folder: msqnet replaces nothing but an empty folder or a folder
    carrying its own ``mark``; a user's folder or file at ``target`` is refused (ValueError) untouched."""
    target = Path(target)
    if not target.exists():
        return
    if not target.is_dir():
        raise ValueError(f"{target}: exists and is not a folder; refusing to replace it with {mark.what}: "
                         "choose another path or remove it yourself")
    if any(target.iterdir()) and not mark.on(target):
        raise ValueError(
            f"{target}: exists and is not {mark.what} written by msqnet (no {mark.file} with "
            f'"{mark.key}": "{mark.value}"); refusing to replace it: choose another folder or remove it yourself'
        )


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike, *, mark: FolderMark | None,
                  previous: str | os.PathLike | None = None) -> Iterator[Path]:
    """Write a folder atomically: yields an empty staging folder beside ``target``, which replaces
    ``target`` when the block ends without an error and is removed when it raises.

    Only what msqnet wrote is ever replaced (``check_replaceable``, before the block runs): an
    existing ``target`` (and ``previous``) must be empty or carry ``mark``, the mark the block writes.
    ``mark=None`` only where msqnet made the path itself (a run's ``checkpoints/last``), so even a
    damaged folder there is replaced.
    An existing ``target`` is first renamed aside: to ``previous`` when given (replacing an older
    folder there: a kept earlier version), else to a temporary name deleted once the new folder is
    in place. A crash between the two renames leaves the old folder complete beside ``target``. A write
    in the block that runs out of room (a full disk, ...) is a WriteError naming ``target``, not the staging folder.
    """
    target = Path(target)
    if mark is not None:
        check_replaceable(target, mark)
        if previous is not None:
            check_replaceable(previous, mark)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        try:
            yield staging
        except OSError as e:
            if isinstance(e, WriteError) or e.errno in _WRITE_ERRNOS:
                raise _write_failed(e, target) from None
            raise
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it owner-only; the folder is an ordinary one
        aside = None
        if target.exists():
            if previous is not None:
                aside = Path(previous)
                if aside.exists():
                    shutil.rmtree(aside)
            else:
                aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-")) / target.name
            os.replace(target, aside)
        os.replace(staging, target)
        fsync_dir(target.parent)
        if aside is not None and previous is None:
            shutil.rmtree(aside.parent, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The text of a user's UTF-8 file (a leading BOM dropped); every failure names the file.

    Raises FileNotFoundError for a missing path, IsADirectoryError for a folder, and
    InputFileError naming the line and byte for text that is not UTF-8.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; expected a {what}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise InputFileError(path, line, f"not UTF-8 text (byte 0x{data[e.start]:02x} at column {column})",
                             f"a UTF-8 encoded {what} (re-save it as UTF-8)") from None


def read_csv_rows(path: str | os.PathLike, what: str = "CSV file", **fmtparams: Any) -> list[tuple[int, list[str]]]:
    """Every row of a CSV file with the line it starts on; a malformed file is an error naming the line.

    ``fmtparams`` go to ``csv.reader`` (``delimiter``, ...). Blank rows are kept (as ``[]``).
    """
    reader = csv.reader(io.StringIO(read_text(path, what), newline=""), **fmtparams)
    rows: list[tuple[int, list[str]]] = []
    line = 1  # where the next row starts (a quoted field may span lines)
    try:
        for row in reader:
            rows.append((line, row))
            line = reader.line_num + 1
    except csv.Error as e:
        raise InputFileError(path, line, f"malformed CSV ({e}): an unclosed quote or a corrupt file",
                             f"a well-formed {what}") from None
    return rows


def csv_data_rows(path: str | os.PathLike, table: list[tuple[int, list[str]]]) -> Iterator[tuple[int, str, list[str]]]:
    """The data rows of a table ``read_csv_rows`` read (below its header), blank rows left out, each as
    ``(line, "file:line", fields)``; a row whose field count differs from the header's is an error naming it."""
    width = len(table[0][1]) if table else 0
    for line, row in table[1:]:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{line}"
        if len(row) != width:
            raise InputFileError(path, line, f"a row of {len(row)} fields", f"{width} fields like the header")
        yield line, where, row


def read_json(path: str | os.PathLike, what: str = "JSON file", expected: str | None = None) -> Any:
    """The JSON value of a user's UTF-8 file; text that is not JSON is an InputFileError naming the file and
    line (``expected``: what it should be instead, default ``a <what>``)."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(path, e.lineno, f"not valid JSON ({e.msg})", expected or f"a {what}") from None


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) inside it replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def json_text(value: Any, **kwargs: Any) -> str:
    """Strict JSON (never ``NaN`` or ``Infinity``): non-finite numbers become ``null``."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)
