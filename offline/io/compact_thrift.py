"""A generic reader and writer of the Thrift compact protocol, for Parquet footers.

A struct is read as a list of ``[field id, type, value]`` in the order the fields were written;
writing that list back gives the same bytes (Thrift's C++ writer, which parquet-cpp uses, is
canonical: short field headers for id deltas 1..15, short list headers under 15 items, minimal
varints). Values: booleans, ints (bytes, i16, i32, i64 alike), doubles as their 8 raw bytes,
binaries as bytes, lists and sets as ``(element type, [values])``, structs as field lists.
Maps are not used by Parquet footers and are refused. Anything malformed raises ValueError.
"""

from __future__ import annotations

from typing import Any

TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(1, 13)
Field = list[Any]  # [field id, type, value]
Struct = list[Field]
_MAX_DEPTH = 32


def read_struct(data: bytes | memoryview, pos: int = 0) -> tuple[Struct, int]:
    """The struct that starts at ``pos`` and where it ends."""
    try:
        return _struct(memoryview(data).cast("B"), pos, 0)  # bytes, not signed chars
    except IndexError:
        raise ValueError("compact thrift: truncated input") from None


def write_struct(fields: Struct) -> bytes:
    """``fields`` encoded as read_struct reads them."""
    out = bytearray()
    _write_struct(out, fields, 0)
    return bytes(out)


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("compact thrift: varint too long")


def _unzigzag(v: int) -> int:
    return (v >> 1) ^ -(v & 1)


def _struct(data: memoryview, pos: int, depth: int) -> tuple[Struct, int]:
    if depth > _MAX_DEPTH:
        raise ValueError("compact thrift: nested too deep")
    fields: Struct = []
    last = 0
    while True:
        header = data[pos]
        pos += 1
        if header == 0:
            return fields, pos
        kind, delta = header & 0x0F, header >> 4
        if delta:
            fid = last + delta
        else:
            raw, pos = _varint(data, pos)
            fid = _unzigzag(raw)
        if kind in (TRUE, FALSE):
            fields.append([fid, TRUE, kind == TRUE])
        else:
            value, pos = _value(data, pos, kind, depth)
            fields.append([fid, kind, value])
        last = fid


def _value(data: memoryview, pos: int, kind: int, depth: int) -> tuple[Any, int]:
    if kind == BYTE:
        return data[pos], pos + 1
    if kind in (I16, I32, I64):
        raw, pos = _varint(data, pos)
        return _unzigzag(raw), pos
    if kind == DOUBLE:
        if pos + 8 > len(data):
            raise IndexError
        return bytes(data[pos : pos + 8]), pos + 8
    if kind == BINARY:
        size, pos = _varint(data, pos)
        if pos + size > len(data):
            raise IndexError
        return bytes(data[pos : pos + size]), pos + size
    if kind in (LIST, SET):
        header = data[pos]
        pos += 1
        size, element = header >> 4, header & 0x0F
        if size == 15:
            size, pos = _varint(data, pos)
        items = []
        for _ in range(size):
            if element in (TRUE, FALSE):
                items.append(data[pos] == TRUE)
                pos += 1
            else:
                item, pos = _value(data, pos, element, depth + 1)
                items.append(item)
        return (element, items), pos
    if kind == STRUCT:
        return _struct(data, pos, depth + 1)
    raise ValueError(f"compact thrift: unsupported type {kind}")


def _write_varint(out: bytearray, value: int) -> None:
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return


def _write_zigzag(out: bytearray, value: int) -> None:
    _write_varint(out, (value << 1) ^ (value >> 63))


def _write_struct(out: bytearray, fields: Struct, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError("compact thrift: nested too deep")
    last = 0
    for fid, kind, value in fields:
        wire = (TRUE if value else FALSE) if kind == TRUE else kind
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | wire)
        else:
            out.append(wire)
            _write_zigzag(out, fid)
        if kind != TRUE:
            _write_value(out, kind, value, depth)
        last = fid
    out.append(0)


def _write_value(out: bytearray, kind: int, value: Any, depth: int) -> None:
    if kind == BYTE:
        out.append(value)
    elif kind in (I16, I32, I64):
        _write_zigzag(out, value)
    elif kind == DOUBLE:
        out += value
    elif kind == BINARY:
        _write_varint(out, len(value))
        out += value
    elif kind in (LIST, SET):
        element, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | element)
        else:
            out.append(0xF0 | element)
            _write_varint(out, len(items))
        for item in items:
            if element in (TRUE, FALSE):
                out.append(TRUE if item else FALSE)
            else:
                _write_value(out, element, item, depth + 1)
    elif kind == STRUCT:
        _write_struct(out, value, depth + 1)
    else:
        raise ValueError(f"compact thrift: unsupported type {kind}")
