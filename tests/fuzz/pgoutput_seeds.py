#!/usr/bin/env python3
"""Writes the fuzz_pgoutput seeds to tests/fuzz/corpus/pgoutput/ (or argv[1]).

One valid pgoutput message (proto_version 1, text tuples) of every kind and
shape, the same messages wrapped in XLogData frames, a keepalive, and LSN
texts: the layouts of PostgreSQL's "Logical Replication Message Formats" and
"Streaming Replication Protocol". The seeds are committed; run this again
only to change them.
"""
import os
import struct
import sys

LSN_A = 0x0000000116B37480
LSN_B = 0x00000001FFFFFFF8
TIME = 723792939682534  # 2022-12-08 05:35:39.682534 UTC, PostgreSQL epoch
RELID = 16385


def s(text):
    """A String: bytes and their NUL."""
    return text.encode() + b"\0"


def text(value):
    """A 't' TupleData value."""
    return b"t" + struct.pack(">i", len(value)) + value


def tuple_(*values):
    """TupleData: int16 count, then each value ('n', 'u' or text bytes)."""
    out = struct.pack(">H", len(values))
    for v in values:
        out += v if v in (b"n", b"u") else text(v)
    return out


def column(key, name, oid, typmod):
    return struct.pack(">B", 1 if key else 0) + s(name) + struct.pack(">Ii", oid, typmod)


MESSAGES = {
    "msg-begin": b"B" + struct.pack(">QqI", LSN_A, TIME, 0xDEADBEEF),
    "msg-commit": b"C" + struct.pack(">BQQq", 0, LSN_A, LSN_B, TIME),
    "msg-origin": b"O" + struct.pack(">Q", LSN_B) + s("node_a"),
    "msg-relation": b"R" + struct.pack(">I", RELID) + s("public") + s("orders") + b"d"
    + struct.pack(">H", 3) + column(True, "id", 20, -1) + column(False, "note", 25, -1)
    + column(False, "amount", 1700, (10 << 16 | 2) + 4),
    "msg-relation-nocols": b"R" + struct.pack(">I", 0xFFFFFFFE) + s("") + s("nocols") + b"n"
    + struct.pack(">H", 0),
    "msg-relation-full": b"R" + struct.pack(">I", 7) + s("s") + s("t") + b"f"
    + struct.pack(">H", 2) + column(True, "a", 23, -1) + column(True, "b", 25, -1),
    "msg-type": b"Y" + struct.pack(">I", 16400) + s("public") + s("mood"),
    "msg-insert": b"I" + struct.pack(">I", RELID) + b"N"
    + tuple_(b"42", b"n", b"u", b"a\0b\xff\xfe", b""),
    "msg-insert-empty": b"I" + struct.pack(">I", RELID) + b"N" + tuple_(),
    "msg-update": b"U" + struct.pack(">I", RELID) + b"N" + tuple_(b"1", b"x"),
    "msg-update-key": b"U" + struct.pack(">I", RELID) + b"K" + tuple_(b"1", b"n") + b"N"
    + tuple_(b"2", b"x"),
    "msg-update-old": b"U" + struct.pack(">I", RELID) + b"O" + tuple_(b"1", b"old") + b"N"
    + tuple_(b"1", b"u"),
    "msg-delete-key": b"D" + struct.pack(">I", RELID) + b"K" + tuple_(b"1", b"n"),
    "msg-delete-old": b"D" + struct.pack(">I", RELID) + b"O" + tuple_(b"1", b"gone"),
    "msg-truncate": b"T" + struct.pack(">iBIII", 3, 3, RELID, 16390, 0xFFFFFFFF),
    "msg-message": b"M" + struct.pack(">BQ", 1, LSN_B) + s("ods") + struct.pack(">i", 4)
    + b"\0\x01\xffz",
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "pgoutput")
    os.makedirs(out, exist_ok=True)
    seeds = dict(MESSAGES)
    for name in ("msg-begin", "msg-relation", "msg-insert", "msg-update-old", "msg-commit"):
        seeds["frame-w-" + name[4:]] = b"w" + struct.pack(">QQq", LSN_A, LSN_B, TIME) + MESSAGES[name]
    seeds["frame-k-reply"] = b"k" + struct.pack(">QqB", LSN_B, TIME, 1)
    seeds["frame-k-noreply"] = b"k" + struct.pack(">QqB", LSN_B, -1, 0)
    seeds["lsn-text"] = b"16/B374D848"
    seeds["lsn-text-max"] = b"FFFFFFFF/ffffffff"
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
