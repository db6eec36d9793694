#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/ (kept in the repository; rerun after changing
a target's input layout). Seeds are valid inputs of each route and format, so the fuzzer starts
from the accepted paths and mutates from there."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


ROUTE_BODIES = [
    ("create", {"job_id": "j-1", "type": "draft", "description": "d", "input": {"a": [1, 2]},
                "labels": {"team": "x"}, "user_id": "u", "ttl_seconds": 60, "max_attempts": 2}),
    ("update", {"progress": {"percent": 50, "phase": "p"}, "data": {"a": None, "b": {"c": 1}},
                "labels": {"team": None, "k": "v"}}),
    ("start", {"worker": "w-1", "lease_seconds": 30}),
    ("heartbeat", {"lease_seconds": 10, "progress": {"percent": 10}}),
    ("hitl", {"type": "clarify", "prompt": {"question": "ok?", "options": ["y", "n"]},
              "timeout_seconds": 60}),
    ("answer", {"request_id": "h-1", "response": {"ok": True}, "responded_by": "alice"}),
    ("complete", {"result": {"text": "done"}}),
    ("fail", {"error": {"code": "boom", "message": "m", "retryable": True}}),
    ("cancel", {"reason": "no longer needed"}),
    ("claim", {"worker": "w", "types": ["draft"], "lease_seconds": 30}),
]
for route, (name, body) in enumerate(ROUTE_BODIES):
    write("fuzz_mutation_requests", name, bytes([route]) + json.dumps(body).encode())
write("fuzz_mutation_requests", "create-empty", bytes([0]))
for i, text in enumerate(['W/"6"', "user-1", "status=running&status=pending&type=t&label=k:v&limit=5",
                          "wait=1.5&after=10", "MTIz"]):
    write("fuzz_mutation_requests", f"header-query-{i}", bytes([10 + i]) + text.encode())


def record(type_, version, at, job_id, data):
    body = struct.pack("<BQqH", type_, version, at, len(job_id)) + job_id.encode()
    return bytes([1]) + b"\0\0\0\0" + body + json.dumps(data, sort_keys=True,
                                                       separators=(",", ":")).encode()


SEQ = struct.pack(">Q", 7)
write("fuzz_record_decoding", "created", bytes([1]) + SEQ + record(
    1, 1, 1_800_000_000_000, "j-1",
    {"type": "t", "user_id": "u", "input": {}, "labels": {}, "ttl_seconds": 60, "max_attempts": 3,
     "description": ""}))
write("fuzz_record_decoding", "started", bytes([1]) + SEQ + record(
    2, 2, 1_800_000_000_100, "j-1", {"worker": "w", "lease_seconds": 30, "attempt": 1}))
write("fuzz_record_decoding", "completed", bytes([1]) + SEQ + record(
    7, 3, 1_800_000_000_200, "j-1", {"result": [1, "x", None]}))
write("fuzz_record_decoding", "bad-crc", bytes([0]) + SEQ + record(9, 4, 1, "j-1", {"reason": "r"}))

write("fuzz_merge_patch", "rfc7396-example",
      b'{"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},"tags":["a","b"]}\0'
      b'{"data":{"title":"Hello!","phoneNumber":"+01-234","author":{"familyName":null},"tags":["c"]}}')
write("fuzz_merge_patch", "labels", b'{}\0{"labels":{"a":"1","b":null},"data":null}')
write("fuzz_merge_patch", "scalar", b'{"a":{"b":1}}\0{"data":{"a":7}}')

for i, text in enumerate(["2026-11-28T12:00:00.123Z", "2026-11-28t12:00:00+05:30",
                          "1999-12-31 23:59:59.999999-00:30", "0000-01-01T00:00:00Z"]):
    write("fuzz_time_parsing", f"time-{i}", bytes([0]) + text.encode())
for i, text in enumerate(["500ms", "90s", "5m", "1h", "7d", "30"]):
    write("fuzz_time_parsing", f"duration-{i}", bytes([1]) + text.encode())
# Cron expressions (selector bit 2; bit 4: Europe/Berlin, whose DST changes the fuzzer crosses).
for name, selector, text in [("cron-steps", 2, "*/15 0-20/2 1,15 jan-jun mon-fri"),
                             ("cron-berlin", 6, "30 2 * * *"), ("cron-macro", 2, "@weekly"),
                             ("cron-or", 10, "30 4 1,15 * 5"), ("cron-never", 2, "0 0 30 2 *")]:
    write("fuzz_time_parsing", name, bytes([selector]) + text.encode())
