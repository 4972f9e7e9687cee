// A multi-threaded allocating JVM program for the fidelity suite: 8 threads
// keep rolling windows of byte arrays and lists of objects, so the heap
// grows, the GC commits and uncommits regions, and thread stacks come and
// go. Runs until killed.
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

public class Alloc {
  public static void main(String[] args) throws Exception {
    int threads = args.length > 0 ? Integer.parseInt(args[0]) : 8;
    for (int t = 0; t < threads; t++) {
      final long seed = t;
      Thread th = new Thread(() -> work(seed));
      th.setDaemon(true);
      th.start();
    }
    // A short-lived thread now and then: stacks mapped and unmapped.
    while (true) {
      Thread th = new Thread(() -> work(-1));
      th.setDaemon(true);
      th.start();
      Thread.sleep(100);
    }
  }

  static void work(long seed) {
    Random r = new Random(seed);
    List<Object> kept = new ArrayList<>();
    int rounds = seed < 0 ? 2000 : Integer.MAX_VALUE;
    for (int i = 0; i < rounds; i++) {
      if (r.nextBoolean()) {
        kept.add(new byte[new int[] {64, 4096, 65536, 1 << 20}[r.nextInt(4)]]);
      } else {
        List<String> l = new ArrayList<>();
        for (int j = 0; j < 200; j++) l.add("s" + j);
        kept.add(l);
      }
      if (kept.size() > 256) kept.remove(r.nextInt(kept.size()));
    }
  }
}
