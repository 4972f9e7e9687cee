"""Benchmark workload: a python3 program doing ordinary work (dicts, lists,
strings, a sort, a JSON round trip) whose heap grows and shrinks: the
interpreter's arenas come and go by mmap/munmap. argv[1] scales it (default
200000). Prints its own duration as elapsed_ns=<n>."""
import json
import sys
import time


def work(n):
    t0 = time.monotonic_ns()
    table = {}
    for i in range(n):
        table["k%d" % i] = [i, str(i) * 3, {"v": i * 2}]
    words = sorted(table, key=lambda k: (len(k), k[::-1]))
    text = json.dumps({k: table[k] for k in words[: n // 4]})
    back = json.loads(text)
    total = sum(v[0] for v in back.values())
    del table, words, text, back
    chunks = [bytearray(64 * 1024) for _ in range(n // 1000)]  # large blocks: mmap'd by the allocator
    total += sum(len(c) for c in chunks)
    return total, time.monotonic_ns() - t0


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    total, ns = work(n)
    print("checksum=%d" % total)
    print("elapsed_ns=%d" % ns)
