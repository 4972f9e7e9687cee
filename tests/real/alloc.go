// Go goroutines allocating, for the fidelity suite: the runtime reserves
// arenas, maps spans and returns memory with madvise while 8 goroutines keep
// rolling windows of slices of varied sizes. Runs until killed.
package main

import (
	"math/rand"
	"runtime"
	"time"
)

func work(seed int64) {
	r := rand.New(rand.NewSource(seed))
	var kept [][]byte
	for {
		size := []int{64, 4096, 65536, 1 << 20, 8 << 20}[r.Intn(5)]
		b := make([]byte, size)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		kept = append(kept, b)
		if len(kept) > 32 {
			kept = kept[r.Intn(8):]
		}
	}
}

func main() {
	for i := 0; i < 8; i++ {
		go work(int64(i))
	}
	for {
		time.Sleep(200 * time.Millisecond)
		runtime.GC()
	}
}
