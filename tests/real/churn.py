"""Python threads churning anonymous memory, for the fidelity suite.

THREADS threads (default 4) loop forever: each maps and unmaps shared
anonymous mappings (mmap.mmap(-1, n): MAP_SHARED|MAP_ANONYMOUS, shown by
/proc as /dev/zero (deleted)), private anonymous ones, and large bytearrays
(malloc's mmap threshold), touching what it maps. Ends on SIGTERM.
"""
import mmap
import random
import sys
import threading

PAGE = mmap.PAGESIZE


def churn(seed):
    rng = random.Random(seed)
    kept = []
    while True:
        kind = rng.randrange(3)
        pages = rng.choice((1, 2, 3, 8, 16, 33, 64))
        if kind == 0:
            m = mmap.mmap(-1, pages * PAGE)
        elif kind == 1:
            m = mmap.mmap(-1, pages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        else:
            m = bytearray(pages * PAGE * 8)
        for off in range(0, len(m), PAGE * 4):
            m[off] = 1
        kept.append(m)
        if len(kept) > 24 or rng.random() < 0.3:
            old = kept.pop(rng.randrange(len(kept)))
            if isinstance(old, mmap.mmap):
                old.close()


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    for i in range(threads):
        threading.Thread(target=churn, args=(i,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
