"""Data helpers every domain shares: TFDS with a clear offline error, local paths, tables.

TFDS retries a failed download for minutes before giving up. Offline that is a hang,
so `load_tfds` first checks whether the dataset is already prepared and, if not, whether
the network answers at all (a DNS lookup with a short timeout); if it does not, the
user gets one line naming the dataset and the `--data` alternative within seconds.
"""

from __future__ import annotations

import csv
import os
import socket
import threading
from pathlib import Path
from typing import Any

from common.errors import UserError

# The host TFDS itself tries first; overridable so tests can simulate being offline.
PROBE_HOST_ENV = "LRSUITE_NETWORK_PROBE_HOST"
DEFAULT_PROBE_HOST = "storage.googleapis.com"
PROBE_TIMEOUT_S = 3.0


def network_available(host: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when `host` resolves within `timeout` seconds."""
    host = host or os.environ.get(PROBE_HOST_ENV, DEFAULT_PROBE_HOST)
    result: list[bool] = []

    def resolve() -> None:
        try:
            socket.getaddrinfo(host, 443)
            result.append(True)
        except OSError:
            result.append(False)

    # getaddrinfo has no timeout of its own: run it in a thread we can stop waiting for.
    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def offline_message(dataset: str, local_help: str) -> str:
    return (
        f"could not download '{dataset}' from tensorflow-datasets (no network, or "
        f"the download failed). Train on local data instead with --data PATH "
        f"({local_help}), or set TFDS_DATA_DIR to a folder where '{dataset}' is "
        "already prepared."
    )


def load_tfds(
    name: str,
    splits: list[str],
    *,
    local_help: str,
    as_supervised: bool = False,
    data_dir: str | None = None,
) -> tuple[list[Any], Any]:
    """Load `splits` of TFDS dataset `name`, downloading only if the network answers.

    Returns:
        (datasets, info): one unbatched tf.data.Dataset per split, and the DatasetInfo.

    Raises:
        UserError: the dataset is not prepared and cannot be downloaded.
    """
    import tensorflow_datasets as tfds

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # unknown name or broken registry
        raise UserError(f"tensorflow-datasets has no dataset {name!r}: {error}") from None
    if not _is_prepared(builder):
        if not network_available():
            raise UserError(offline_message(name, local_help))
        try:
            builder.download_and_prepare()
        except Exception as error:  # network errors come in many types
            raise UserError(
                offline_message(name, local_help) + f" Cause: {type(error).__name__}"
            ) from None
    datasets = builder.as_dataset(split=splits, as_supervised=as_supervised)
    return list(datasets), builder.info


def _is_prepared(builder: Any) -> bool:
    try:
        return bool(builder.is_prepared())
    except Exception:
        return False


def existing_path(path: str | os.PathLike, what: str) -> Path:
    """Return `path` as a Path, or a UserError naming it when it does not exist."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise UserError(f"{what} not found: {resolved}. Check the --data path.")
    return resolved


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 file.

    Raises:
        UserError: bytes that are not UTF-8, naming the file, the line and the byte.
    """
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise UserError(
            f"{path}:{line}: bytes that are not UTF-8 (at byte {error.start}). "
            "Re-save the file as UTF-8."
        ) from None


def read_table(
    path: Path, required: tuple[str, ...], *, delimiter: str | None = None
) -> list[dict[str, str]]:
    """Read a UTF-8 TSV or CSV file with a header row into a list of dicts.

    TSV is read without quoting (texts may contain `"`); CSV uses standard quoting.
    Lines are split on newlines only, so characters such as U+0085 stay inside a text.

    Raises:
        UserError: undecodable bytes, an empty file, a missing column or a row with
            the wrong number of fields, naming the file and line.
    """
    if delimiter is None:
        delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    text = read_utf8(path).removeprefix("\ufeff")
    if not text.strip():
        raise UserError(f"{path}: the file is empty; expected a header and rows.")
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(text.split("\n"), delimiter=delimiter, quoting=quoting)
    header = [name.strip() for name in next(reader)]
    missing = [name for name in required if name not in header]
    if missing:
        raise UserError(
            f"{path}:1: missing column(s) {', '.join(missing)}; the header must "
            f"name {', '.join(required)} (found: {', '.join(header) or 'nothing'})."
        )
    rows = []
    line_number = reader.line_num + 1  # the physical line where the next record starts
    for fields in _csv_rows(reader, path, quoting):
        start, line_number = line_number, reader.line_num + 1
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line, e.g. the final newline
        if len(fields) != len(header):
            spans = f" (a record from line {start} to {reader.line_num}: check its quotes)" \
                if reader.line_num > start else ""
            raise UserError(
                f"{path}:{start}: expected {len(header)} fields separated by "
                f"{'a tab' if delimiter == chr(9) else repr(delimiter)}, found "
                f"{len(fields)}{spans}."
            )
        row = dict(zip(header, fields, strict=True))
        row["_line"] = str(start)
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: the file has a header but no rows.")
    return rows


def _csv_rows(reader, path: Path, quoting: int):
    """The reader's rows, with its own errors (a field over the csv module's size limit)
    turned into a UserError naming the file and line."""
    try:
        yield from reader
    except csv.Error as error:
        hint = "" if quoting == csv.QUOTE_NONE else (
            " A quote that opens a field and never closes runs on to the end of the file;"
            " check the quoting of the rows above.")
        raise UserError(f"{path}:{reader.line_num}: cannot read the row ({error}).{hint}") from None
