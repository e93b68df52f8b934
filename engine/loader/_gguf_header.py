"""A bounded walk over a GGUF file's header before ``gguf.GGUFReader`` sees the file.

The reader trusts every count in the header: for an array it builds one Python object per
claimed element, so a 100-byte file claiming a 2**40-element array grows until the OOM
killer acts (and reading past the end never stops it: an empty slice advances nothing).
This walk reads the same header with ``struct`` over an mmap, holds nothing per element,
and checks each count against the bytes that are left (every element takes at least one
byte, a string its 8-byte length) and against a total the reader can afford, so a hostile
or truncated file is a ``ModelLoadError`` in milliseconds.

It follows the GGUF v2/v3 layout: magic, version u32, tensor count u64, KV count u64, the
KV entries (key string, value type u32, value), the tensor infos (name, n_dims u32, dims
u64 each, ggml type u32, data offset u64), padding to ``general.alignment``, the data.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from engine.errors import ModelLoadError

__all__ = ["MAX_ARRAY_ELEMENTS", "check_gguf_header", "read_gguf_strings"]

# Elements of all metadata arrays together. The reader keeps ~2 numpy views per string
# element (~200 bytes with the list slots), so this caps its metadata at about 400 MB.
# Real files stay far below: Llama-3 has 128k tokens + 280k merges + 128k token types,
# Gemma-3 262k tokens with scores and types (under 1M in all).
MAX_ARRAY_ELEMENTS = 1 << 21
_MAX_DEPTH = 3  # arrays of arrays of arrays; llama.cpp writes at most one level
_MAX_DIMS = 4  # GGML_MAX_DIMS
_DEFAULT_ALIGNMENT = 32
_SUPPORTED_VERSIONS = (2, 3)  # what gguf.GGUFReader reads

# GGUF value types -> size of a fixed-size value (STRING=8 and ARRAY=9 are walked).
_FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4


class _Bad(Exception):
    """What is wrong with the header (becomes the ModelLoadError's message)."""


class _Cursor:
    """Reads little/big-endian values from the mapped file, never past its end."""

    def __init__(self, data: mmap.mmap | bytes, order: str) -> None:
        self.data, self.order, self.pos, self.elements = data, order, 0, 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, fmt: str, what: str) -> int:
        size = struct.calcsize(fmt)
        if size > self.left:
            raise _Bad(f"the file ends inside {what} (offset {self.pos})")
        (value,) = struct.unpack_from(self.order + fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def skip(self, size: int, what: str) -> None:
        if size > self.left:
            raise _Bad(f"{what} claims {size} bytes but only {self.left} are left")
        self.pos += size

    def string(self, what: str) -> bytes:
        start = self.skip_string(what)
        return bytes(self.data[start : self.pos])

    def skip_string(self, what: str) -> int:
        """Step over a string (a value: never copied, it may be as long as the file);
        returns where its bytes start."""
        length = self.take("Q", f"the length of {what}")
        start = self.pos
        self.skip(length, what)
        return start


def check_gguf_header(path: Path) -> None:
    """Refuse a GGUF file whose header does not fit the file.

    Raises:
        ModelLoadError: unreadable, truncated, or claiming more than the file holds or
            than the reader can afford; the message names the file and the part.
    """
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            if size < 24:
                raise _Bad(f"the file has {size} bytes, fewer than a GGUF header")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                _walk(data)
    except _Bad as exc:
        raise ModelLoadError(
            f"{path} is not a readable GGUF file (truncated or corrupt?): {exc}"
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: mmap of a file that shrank to 0
        raise ModelLoadError(f"cannot read GGUF file {path}: {exc}") from None


def read_gguf_strings(path: Path, key: str) -> tuple[str, ...] | None:
    """The metadata value ``key`` of a GGUF file as strings (a string or an array of
    strings, e.g. ``general.languages``), or None when the file lacks it, holds another
    type there, or cannot be read. Bounded like ``check_gguf_header``: nothing but the
    wanted value is copied."""
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _find_strings(data, key.encode())
    except (_Bad, OSError, ValueError, struct.error):
        return None


def _find_strings(data: mmap.mmap | bytes, wanted: bytes) -> tuple[str, ...] | None:
    if data[:4] != b"GGUF":
        return None
    (version,) = struct.unpack_from("<I", data, 4)
    cur = _Cursor(data, ">" if version & 0xFFFF == 0 else "<")
    cur.pos = 8
    cur.take("Q", "the tensor count")
    kv_count = cur.take("Q", "the metadata count")
    for i in range(min(kv_count, cur.left // 13)):
        key = cur.string(f"metadata key #{i}")
        kind = cur.take("I", "a metadata type")
        if key != wanted:
            _value(cur, kind, "metadata", depth=0)
        elif kind == _STRING:
            return (cur.string("metadata").decode("utf-8", errors="replace"),)
        elif kind == _ARRAY and cur.take("I", "an element type") == _STRING:
            count = cur.take("Q", "an array length")
            if count * 8 > cur.left:
                raise _Bad(f"{count} strings cannot fit")
            return tuple(
                cur.string("metadata").decode("utf-8", errors="replace") for _ in range(count)
            )
        else:
            return None
    return None


def _walk(data: mmap.mmap | bytes) -> None:
    if data[:4] != b"GGUF":
        raise _Bad("no GGUF magic")
    (version,) = struct.unpack_from("<I", data, 4)
    # As the reader does: a zero low half is a file written for the other byte order.
    order = ">" if version & 0xFFFF == 0 else "<"
    cur = _Cursor(data, order)
    cur.pos = 4
    version = cur.take("I", "the version")
    if version not in _SUPPORTED_VERSIONS:
        raise _Bad(f"GGUF version {version} (readable: {', '.join(map(str, _SUPPORTED_VERSIONS))})")
    tensor_count = cur.take("Q", "the tensor count")
    kv_count = cur.take("Q", "the metadata count")
    # A KV entry takes at least 13 bytes (key length, type, a one-byte value).
    if kv_count * 13 > cur.left:
        raise _Bad(f"{kv_count} metadata entries cannot fit in {cur.left} bytes")
    alignment = _DEFAULT_ALIGNMENT
    for i in range(kv_count):
        key = cur.string(f"metadata key #{i}").decode("utf-8", errors="replace")
        kind = cur.take("I", f"the type of metadata {key!r}")
        if key == "general.alignment":
            if kind != _UINT32:
                raise _Bad("general.alignment is not a uint32")
            alignment = cur.take("I", "general.alignment")
            if alignment == 0 or alignment & (alignment - 1):
                raise _Bad(f"general.alignment {alignment} is not a power of two")
            continue
        _value(cur, kind, key, depth=0)
    # A tensor info takes at least 24 bytes (name length, n_dims, ggml type, offset).
    if tensor_count * 24 > cur.left:
        raise _Bad(f"{tensor_count} tensors cannot fit in {cur.left} bytes")
    tensors = [_tensor_info(cur, i) for i in range(tensor_count)]
    data_start = -(-cur.pos // alignment) * alignment
    data_bytes = len(data) - data_start
    for name, nbytes, offset in tensors:
        if offset + nbytes > data_bytes:
            raise _Bad(
                f"tensor {name!r} needs bytes {offset}..{offset + nbytes} of the data "
                f"section, which has {max(data_bytes, 0)}"
            )


def _value(cur: _Cursor, kind: int, key: str, *, depth: int) -> None:
    fixed = _FIXED_SIZES.get(kind)
    if fixed is not None:
        cur.skip(fixed, f"metadata {key!r}")
    elif kind == _STRING:
        cur.skip_string(f"metadata {key!r}")
    elif kind == _ARRAY:
        _array(cur, key, depth=depth)
    else:
        raise _Bad(f"metadata {key!r} has unknown value type {kind}")


def _array(cur: _Cursor, key: str, *, depth: int) -> None:
    if depth >= _MAX_DEPTH:
        raise _Bad(f"metadata {key!r} nests arrays more than {_MAX_DEPTH} deep")
    item = cur.take("I", f"the element type of metadata {key!r}")
    count = cur.take("Q", f"the length of metadata {key!r}")
    fixed = _FIXED_SIZES.get(item)
    least = fixed if fixed is not None else 8 if item == _STRING else 12
    if count * least > cur.left:
        raise _Bad(f"metadata {key!r} claims {count} elements but only {cur.left} bytes are left")
    cur.elements += count
    if cur.elements > MAX_ARRAY_ELEMENTS:
        raise _Bad(f"the metadata arrays hold more than {MAX_ARRAY_ELEMENTS} elements")
    if fixed is not None:
        cur.skip(count * fixed, f"metadata {key!r}")
        return
    for _ in range(count):
        _value(cur, item, key, depth=depth + 1)


def _tensor_info(cur: _Cursor, i: int) -> tuple[str, int, int]:
    """(name, data bytes, offset in the data section) of tensor info ``i``."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    name = cur.string(f"the name of tensor #{i}").decode("utf-8", errors="replace")
    n_dims = cur.take("I", f"the dimension count of tensor {name!r}")
    if not 1 <= n_dims <= _MAX_DIMS:
        raise _Bad(f"tensor {name!r} has {n_dims} dimensions (1 to {_MAX_DIMS} allowed)")
    elements = 1
    for _ in range(n_dims):
        elements *= cur.take("Q", f"the shape of tensor {name!r}")
    raw_type = cur.take("I", f"the type of tensor {name!r}")
    offset = cur.take("Q", f"the data offset of tensor {name!r}")
    try:
        block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(raw_type)]
    except (ValueError, KeyError):
        raise _Bad(f"tensor {name!r} has unknown ggml type {raw_type}") from None
    if elements % block:
        raise _Bad(f"tensor {name!r} has {elements} elements, not whole blocks of {block}")
    return name, elements // block * block_bytes, offset
