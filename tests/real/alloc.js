// Node allocating Buffers and arrays, for the fidelity suite: V8 maps,
// commits and protects heap pages from its helper threads while this loop
// keeps a rolling window of Buffers (small ones from the pool, large ones
// from malloc/mmap) and of arrays of objects. Ends on SIGTERM.
'use strict';
let seed = 1;
function rand(n) {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
}
const buffers = [];
const arrays = [];
function step() {
  for (let i = 0; i < 200; i++) {
    const size = [64, 4096, 65536, 300000, 2 << 20][rand(5)];
    const b = Buffer.alloc(size);
    b[size - 1] = 1;
    buffers.push(b);
    if (buffers.length > 64) buffers.splice(rand(buffers.length), 1);
    const a = new Array(1000 + rand(20000)).fill(0).map((_, j) => ({ j, s: 'x' + j }));
    arrays.push(a);
    if (arrays.length > 16) arrays.splice(rand(arrays.length), 1);
  }
  setImmediate(step);
}
step();
