// The vmatrace timeline page: draws the model `vmatrace report --html` built
// (src/report/html_report.cpp) on a canvas, with d3 (v3) for scales, zoom
// and the memory chart. Everything heavy (segments, bucketing, the axis) was
// decided on the C++ side; this file only draws, hit-tests and looks up.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('vmatrace-data').textContent);
  var KIND_COLORS = {
    heap: '#e8833a', stack: '#8e5bb5', anon: '#4a90d9', file: '#9aa57a',
    shared: '#d9b23a', code: '#3aa675', special: '#9e9e9e'
  };
  var MARKER_COLORS = {
    vma_new: '#1b5e20', vma_remove: '#b71c1c', vma_merge: '#0d47a1', vma_split: '#e65100',
    vma_expand: '#00838f', vma_shrink: '#6d4c41', vma_flags: '#6a1b9a', vma_move: '#ad1457', vma_update: '#455a64'
  };
  var MARGIN = { left: 150, right: 12, top: 10, bottom: 28 };

  var canvas = document.getElementById('timeline');
  var tip = document.getElementById('tip');
  var ctx = canvas.getContext('2d');
  var proc = null;        // the process shown
  var selected = null;    // the clicked moment (ns from the start)
  var geom = new Float64Array(0);  // per segment: x0, x1, y0, y1, recomputed on draw
  var markerGeom = [];    // markers drawn (one per pixel cell and kind)
  var growthGeom = [];    // malloc growth markers drawn
  var x = d3.scale.linear(), y = d3.scale.linear();
  var zoom = d3.behavior.zoom();
  var width = 0, height = 0;
  // Per process, computed once: axis positions of each segment's ends and
  // of each marker, and which segments are inaccessible (---p guards).
  var posLo = [], posHi = [], noAccess = [], markerPos = [], markerKind = [], heatOf = {};
  var HEAT = [];
  for (var lv = 0; lv < 16; lv++) HEAT.push('rgba(220,0,0,' + (0.15 + 0.75 * (lv + 1) / 16).toFixed(3) + ')');

  function hex(n) { return n.toString(16); }
  function seconds(t) { return '+' + (t / 1e9).toFixed(6) + 's'; }
  function size(bytes) {
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (bytes >= 1024 && i < u.length - 1) { bytes /= 1024; i++; }
    return (i ? bytes.toFixed(1) : bytes) + ' ' + u[i];
  }
  function segEnd(s) { return s[3] < 0 ? Infinity : s[3]; }

  // ---- the compressed address axis: [lo, hi, y0, y1] clusters ----
  function axisPos(addr) {
    var a = proc.axis;
    if (!a.length) return 0;
    if (addr <= a[0][0]) return a[0][2];
    for (var i = 0; i < a.length; i++) {
      var c = a[i];
      if (addr <= c[1]) {
        if (addr < c[0]) return (a[i - 1][3] + c[2]) / 2;
        return c[2] + (c[3] - c[2]) * (addr - c[0]) / (c[1] - c[0]);
      }
    }
    return 1;
  }
  function posAddr(p) {  // inverse, for labels; null in a break
    var a = proc.axis;
    for (var i = 0; i < a.length; i++) {
      var c = a[i];
      if (p >= c[2] && p <= c[3]) return c[0] + (c[1] - c[0]) * (p - c[2]) / ((c[3] - c[2]) || 1);
    }
    return null;
  }

  // ---- layout at a moment: the segments alive then, as /proc/PID/maps ----
  function layoutAt(t) {
    var live = proc.segments.filter(function (s) { return s[2] <= t && t < segEnd(s); });
    live.sort(function (a, b) { return a[0] - b[0]; });
    return live.map(function (s) { return s[6] + '\n'; }).join('');
  }

  function resize() {
    var dpr = window.devicePixelRatio || 1;
    width = canvas.clientWidth; height = canvas.clientHeight;
    canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    var xd = x.domain(), yd = y.domain();
    x.range([MARGIN.left, width - MARGIN.right]);
    y.range([height - MARGIN.bottom, MARGIN.top]);
    if (xd.length === 2 && proc) { x.domain(xd); y.domain(yd); }
    zoom.x(x).y(y);
  }

  function resetView() {
    // From the first record: the recording starts with loading the tracer.
    var pad = Math.max(1, (data.t_end - data.t_first) * 0.01);
    x.domain([Math.max(0, data.t_first - pad), Math.max(data.t_first + 1, data.t_end + pad)]);
    y.domain([0, 1]);
    zoom.x(x).y(y);
    lastScale = 1;
    draw();
  }

  function draw() {
    ctx.clearRect(0, 0, width, height);
    var l = MARGIN.left, r = width - MARGIN.right, top = MARGIN.top, bottom = height - MARGIN.bottom;
    ctx.save();
    ctx.beginPath(); ctx.rect(l, top, r - l, bottom - top); ctx.clip();
    var tEnd = Math.max(1, data.t_end);
    var segs = proc.segments, n = segs.length;
    if (geom.length !== 4 * n) geom = new Float64Array(4 * n);
    // The scales as plain linear maps: this loop runs per segment per frame.
    var xd = x.domain(), xr = x.range(), yd = y.domain(), yr = y.range();
    var kx = (xr[1] - xr[0]) / (xd[1] - xd[0]), ox = xr[0] - kx * xd[0];
    var ky = (yr[1] - yr[0]) / (yd[1] - yd[0]), oy = yr[0] - ky * yd[0];
    // Bands: one rect per segment, at least a pixel each way. Bands thinner
    // than two pixels that land on a cell already painted in the same kind
    // are skipped: a million short-lived mappings cost a screenful of rects.
    var painted = new Set();
    for (var i = 0; i < n; i++) {
      var s = segs[i];
      var x0 = ox + kx * s[2], x1 = ox + kx * (s[3] < 0 || s[3] > tEnd ? tEnd : s[3]);
      var y0 = oy + ky * posHi[i], y1 = oy + ky * posLo[i];  // y0 top (high address)
      if (x1 - x0 < 1) x1 = x0 + 1;
      if (y1 - y0 < 1) y1 = y0 + 1;
      geom[4 * i] = x0; geom[4 * i + 1] = x1; geom[4 * i + 2] = y0; geom[4 * i + 3] = y1;
      if (x1 < l || x0 > r || y1 < top || y0 > bottom) continue;
      if (x1 - x0 < 2) {
        var key = ((Math.round(x0) * 4096 + Math.round(y0)) * 4096 + Math.round(y1)) * 8 + s[4];
        if (painted.has(key)) continue;
        painted.add(key);
      }
      ctx.fillStyle = KIND_COLORS[data.kinds[s[4]]] || '#999';
      ctx.globalAlpha = noAccess[i] ? 0.35 : 0.85;
      ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
      ctx.globalAlpha = 1;
      if (y1 - y0 >= 4 && x1 - x0 >= 4) {
        ctx.strokeStyle = '#fff'; ctx.lineWidth = 1;
        ctx.strokeRect(x0 + 0.5, y0 + 0.5, x1 - x0 - 1, y1 - y0 - 1);
      }
      if (y1 - y0 >= 12 && x1 - x0 >= 60) {
        ctx.fillStyle = '#000';
        ctx.font = '10px monospace';
        ctx.fillText(s[8] + ' ' + (s[7] || 'anon'), Math.max(x0, l) + 3, y0 + 10);
      }
    }
    // Fault heat: per segment and time bucket, red with log-scaled alpha
    // (16 steps); one rect per pixel cell, the hottest first.
    var heat = proc.heat, maxHeat = 1;
    for (var h = 0; h < heat.length; h++) if (heat[h][2] > maxHeat) maxHeat = heat[h][2];
    painted.clear();
    var logMax = Math.log(1 + maxHeat);
    for (var h = 0; h < heat.length; h++) {
      var c = heat[h], s = segs[c[0]], g = 4 * c[0], by0 = geom[g + 2], by1 = geom[g + 3];
      if (by1 < top || by0 > bottom) continue;
      var b0 = data.t_first + c[1] * data.bucket_ns;
      var t0 = Math.max(b0, s[2]), t1 = Math.min(b0 + data.bucket_ns, segEnd(s), tEnd);
      var x0 = ox + kx * t0, x1 = Math.max(ox + kx * t1, x0 + 2);
      if (x1 < l || x0 > r) continue;
      var level = Math.min(15, Math.floor(16 * Math.log(1 + c[2]) / logMax));
      var key = ((Math.round(x0) * 4096 + Math.round(by0)) * 4096 + Math.round(by1)) * 16 + level;
      if (x1 - x0 < 3 && painted.has(key)) continue;
      painted.add(key);
      ctx.fillStyle = HEAT[level];
      ctx.fillRect(x0, by0, x1 - x0, by1 - by0);
    }
    // Markers: one per pixel cell and kind (a million changes stay drawable).
    markerGeom = [];
    var seen = new Set(), ms = proc.markers;
    for (var i = 0; i < ms.length; i++) {
      var m = ms[i], mx = ox + kx * m[0], my = oy + ky * markerPos[i];
      if (mx < l - 4 || mx > r + 4 || my < top - 4 || my > bottom + 4) continue;
      var key = (Math.round(mx / 3) * 8192 + Math.round(my / 3)) * 16 + markerKind[i];
      if (seen.has(key)) continue;
      seen.add(key);
      markerGeom.push({ i: i, x: mx, y: my });
      ctx.fillStyle = MARKER_COLORS[m[1]] || '#000';
      ctx.strokeStyle = '#fff';
      ctx.beginPath();
      ctx.moveTo(mx, my - 5); ctx.lineTo(mx + 4, my); ctx.lineTo(mx, my + 5); ctx.lineTo(mx - 4, my);
      ctx.closePath(); ctx.fill(); ctx.stroke();
    }
    // Malloc growth: a black dot in the middle of the grown range.
    growthGeom = [];
    (proc.malloc_growth || []).forEach(function (g, i) {
      var mx = ox + kx * g[0], my = oy + ky * axisPos(g[1] + g[2] / 2);
      if (mx < l - 4 || mx > r + 4 || my < top - 4 || my > bottom + 4) return;
      growthGeom.push({ i: i, x: mx, y: my });
      ctx.fillStyle = '#000'; ctx.strokeStyle = '#fff';
      ctx.beginPath(); ctx.arc(mx, my, 4, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    });
    if (selected !== null) {
      ctx.strokeStyle = '#c00'; ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(x(selected), top); ctx.lineTo(x(selected), bottom); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.restore();
    drawAxes(l, r, top, bottom);
  }

  function drawAxes(l, r, top, bottom) {
    ctx.fillStyle = '#333'; ctx.strokeStyle = '#999'; ctx.font = '10px monospace';
    // time
    x.ticks(8).forEach(function (t) {
      ctx.beginPath(); ctx.moveTo(x(t), bottom); ctx.lineTo(x(t), bottom + 4); ctx.stroke();
      ctx.fillText(seconds(t), x(t) - 30, bottom + 16);
    });
    // address: each cluster's ends, and a break mark between clusters
    var lastY = Infinity;
    proc.axis.forEach(function (c, i) {
      var yl = y(c[2]), yh = y(c[3]);
      if (yh > bottom || yl < top) { /* partly off screen */ }
      ctx.strokeStyle = '#bbb';
      if (yl <= bottom && yl >= top && Math.abs(yl - lastY) > 11) {
        ctx.fillText(hex(c[0]), 4, yl); lastY = yl;
      }
      if (yh <= bottom && yh >= top && Math.abs(yh - lastY) > 11) {
        ctx.fillText(hex(c[1]), 4, yh + 9); lastY = yh;
      }
      if (i + 1 < proc.axis.length) {
        var yb = y((c[3] + proc.axis[i + 1][2]) / 2);
        if (yb >= top && yb <= bottom) {
          ctx.strokeStyle = '#e0e0e0'; ctx.setLineDash([2, 4]);
          ctx.beginPath(); ctx.moveTo(l, yb); ctx.lineTo(r, yb); ctx.stroke(); ctx.setLineDash([]);
          ctx.fillStyle = '#aaa'; ctx.fillText('≈', l - 12, yb + 3); ctx.fillStyle = '#333';
        }
      }
    });
    ctx.strokeStyle = '#999';
    ctx.strokeRect(l + 0.5, top + 0.5, r - l - 1, bottom - top - 1);
  }

  // ---- hover, click ----
  // Every marker drawn under the pointer (changes of one instant stack up).
  function markersAt(px, py) {
    var out = [];
    for (var i = markerGeom.length - 1; i >= 0 && out.length < 8; i--) {
      var g = markerGeom[i];
      if (Math.abs(g.x - px) <= 5 && Math.abs(g.y - py) <= 6) out.push(proc.markers[g.i]);
    }
    return out;
  }
  function growthAt(px, py) {
    var out = [];
    for (var i = growthGeom.length - 1; i >= 0 && out.length < 8; i--) {
      var g = growthGeom[i];
      if (Math.abs(g.x - px) <= 5 && Math.abs(g.y - py) <= 5) out.push(proc.malloc_growth[g.i]);
    }
    return out;
  }
  function segmentAt(px, py) {
    var best = -1;
    for (var i = 0, n = geom.length / 4; i < n; i++) {
      var g = 4 * i;
      if (px >= geom[g] && px < geom[g + 1] && py >= geom[g + 2] && py < geom[g + 3]) best = i;
    }
    return best;
  }
  function describeSegment(i, t) {
    var s = proc.segments[i];
    // The faults of the heat cell under the pointer, if any.
    var b = Math.floor((t - data.t_first) / data.bucket_ns), here = '';
    (heatOf[i] || []).forEach(function (c) {
      if (c[1] === b) here = '   here: ' + c[2] + ' in ' + seconds(data.t_first + b * data.bucket_ns) + '..' +
        seconds(data.t_first + (b + 1) * data.bucket_ns);
    });
    return hex(s[0]) + '-' + hex(s[1]) + ' ' + s[8] + ' ' + size(s[1] - s[0]) + '  ' + (s[7] || '(anonymous)') + '\n' +
      'kind: ' + data.kinds[s[4]] + '   faults: ' + s[5] + here + '\n' +
      'from ' + seconds(s[2]) + ' to ' + (s[3] < 0 ? 'the end' : seconds(s[3])) + '\n' +
      'made by: ' + (s[9] || '?') + '\n' + s[6];
  }
  function describeMarker(m) {
    return m[1] + ' by ' + (m[4] || '?') + ' at ' + seconds(m[0]) + '\n' + hex(m[2]) + '-' + hex(m[3]) + ' (' +
      size(m[3] - m[2]) + ')';
  }
  function describeGrowth(g) {
    return 'malloc growth: ' + g[3] + '\n+' + size(g[2]) + ' at ' + hex(g[1]) + '-' + hex(g[1] + g[2]) + ' at ' +
      seconds(g[0]) + (g[7] > g[6] ? '\nVMA ' + hex(g[6]) + '-' + hex(g[7]) : '');
  }
  function hoverText(px, py) {
    // Malloc growth and the VMA changes under the pointer (they often coincide).
    var lines = growthAt(px, py).map(describeGrowth).concat(markersAt(px, py).map(describeMarker));
    if (lines.length) return lines.join('\n');
    var i = segmentAt(px, py);
    return i >= 0 ? describeSegment(i, x.invert(px)) : null;
  }
  canvas.addEventListener('mousemove', function (ev) {
    var rect = canvas.getBoundingClientRect(), px = ev.clientX - rect.left, py = ev.clientY - rect.top;
    var text = hoverText(px, py);
    if (!text) { tip.hidden = true; return; }
    tip.textContent = text;
    tip.hidden = false;
    var left = px + 14, w = tip.offsetWidth;
    if (left + w > width) left = Math.max(0, px - w - 14);
    tip.style.left = left + 'px';
    tip.style.top = (py + 14) + 'px';
  });
  canvas.addEventListener('mouseleave', function () { tip.hidden = true; });
  canvas.addEventListener('click', function (ev) {
    if (ev.defaultPrevented) return;  // the end of a drag (d3's zoom suppresses it so)
    var rect = canvas.getBoundingClientRect(), px = ev.clientX - rect.left;
    if (px < MARGIN.left || px > width - MARGIN.right) return;
    selectTime(Math.max(0, Math.round(x.invert(px))));
  });

  function selectTime(t) {
    selected = t;
    document.getElementById('layout-time').textContent = seconds(t) + ' (' + t + ' ns after the start)';
    document.getElementById('layout').textContent = layoutAt(t);
    // The changes around it: the ten before and the ten after.
    var ms = proc.markers, at = 0;
    while (at < ms.length && ms[at][0] <= t) at++;
    var around = ms.slice(Math.max(0, at - 10), at + 10).map(function (m, k, arr) {
      var line = seconds(m[0]) + ' ' + m[1] + ' ' + hex(m[2]) + '-' + hex(m[3]) + ' (' + (m[4] || '?') + ')';
      return (m[0] <= t ? '  ' : '> ') + line;
    });
    document.getElementById('around').textContent = around.join('\n') || '(no changes)';
    draw();
  }

  // ---- zoom and pan: wheel zooms both axes, shift only time, alt only addresses ----
  var lastScale = 1, lastTranslate = [0, 0];
  zoom.scaleExtent([1e-3, 1e7]).on('zoom', function () {
    var ev = d3.event.sourceEvent;
    if (ev && ev.type === 'wheel' && (ev.ctrlKey || ev.altKey)) {
      // One axis only: undo the other's change (zoom rescaled both domains).
      var k = d3.event.scale / lastScale;
      var keep = ev.ctrlKey ? y : x, base = keep.domain(), mid = (ev.ctrlKey ? ev.offsetY : ev.offsetX);
      var c = keep.invert(mid);
      keep.domain([c - (c - base[0]) * k, c + (base[1] - c) * k]);
      zoom.x(x).y(y);
      lastScale = 1; lastTranslate = [0, 0];
    } else {
      lastScale = d3.event.scale; lastTranslate = d3.event.translate;
    }
    tip.hidden = true;
    draw();
  });
  d3.select(canvas).call(zoom).on('dblclick.zoom', null);

  // ---- panels ----
  function drawMemory() {
    var c = document.getElementById('memory'), dpr = window.devicePixelRatio || 1;
    var w = c.clientWidth, h = c.clientHeight, g = c.getContext('2d');
    c.width = w * dpr; c.height = h * dpr; g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    var m = proc.mapped, n = m.length;
    if (!n) return;
    var totals = m.map(function (row) { return row.reduce(function (a, b) { return a + b; }, 0); });
    var xs = d3.scale.linear().domain([0, n]).range([60, w - 130]);
    var ys = d3.scale.linear().domain([0, d3.max(totals) || 1]).range([h - 20, 8]);
    var base = m.map(function () { return 0; });
    data.kinds.forEach(function (kind, k) {
      g.fillStyle = KIND_COLORS[kind];
      g.beginPath();
      for (var i = 0; i < n; i++) g.lineTo(xs(i + 1), ys(base[i] + m[i][k]));
      for (var j = n - 1; j >= 0; j--) g.lineTo(xs(j + 1), ys(base[j]));
      g.closePath(); g.fill();
      for (var b = 0; b < n; b++) base[b] += m[b][k];
    });
    g.fillStyle = '#333'; g.font = '10px monospace';
    ys.ticks(4).forEach(function (v) { g.fillText(size(v), 2, ys(v) + 3); });
    g.fillText(seconds(data.t_first), 60, h - 4);
    g.fillText(seconds(data.t_first + n * data.bucket_ns), w - 180, h - 4);
    g.fillText('peak', w - 120, 8);
    data.kinds.forEach(function (kind, k) {
      var peak = d3.max(m, function (row) { return row[k]; });
      g.fillStyle = KIND_COLORS[kind]; g.fillRect(w - 120, 14 + k * 14, 10, 10);
      g.fillStyle = '#333'; g.fillText(kind + ' ' + size(peak), w - 106, 23 + k * 14);
    });
  }

  function fillTable(id, header, rows) {
    var t = d3.select('#' + id);
    t.selectAll('*').remove();
    t.append('tr').selectAll('th').data(header).enter().append('th').text(function (d) { return d; });
    rows.forEach(function (r) {
      t.append('tr').selectAll('td').data(r).enter().append('td')
        .attr('class', function (d) { return typeof d === 'number' ? 'n' : null; })
        .text(function (d) { return d; });
    });
  }

  function showPanels() {
    var hot = data.fault_hotspots.filter(function (r) { return r.pid === proc.pid; });
    fillTable('hotspots', ['range', 'VMA', 'perms', 'faults', 'read', 'write', 'exec', 'major'],
      hot.map(function (r) { return [r.range, r.name, r.perms, r.faults, r.read, r.write, r.exec, r.major]; }));
    // Call sites as the C++ side ranked them (most bytes first).
    var sites = proc.malloc_sites || [];
    document.getElementById('malloc-panel').hidden = sites.length === 0;
    if (sites.length) {
      fillTable('malloc', ['allocator', 'call site', 'grew by', 'times', 'largest'], sites.map(function (s) {
        return [s[0] || '(none)', s[1] + (s[2] ? ' (' + s[2] + ')' : ''), size(s[4]), s[3], size(s[5])];
      }));
    }
    var notes = [];
    if (data.damaged) notes.push('The recording is damaged: ' + data.damage + ' (shown up to there).');
    if (data.lost)
      notes.push(data.lost + ' records were lost, each loss followed by a resync of the layout from /proc: ' +
        (data.losses || []).map(function (l) {
          return 'pid ' + l[0] + ' (' + l[1] + ') ' + l[2] +
            (l[3] > 1 ? ' in ' + l[3] + ' losses, ' + seconds(l[4]) + ' to ' + seconds(l[5]) : ' at ' + seconds(l[4]));
        }).join('; ') + '.');
    if (proc.segments_dropped)
      notes.push(proc.segments_dropped + ' VMAs that lived under ' + seconds(proc.dropped_below_ns) +
        ' are not drawn (too many to draw); layouts may miss them.');
    if (proc.malloc_growth_dropped) notes.push(proc.malloc_growth_dropped + ' more malloc growths are not marked.');
    if (proc.markers_dropped) notes.push(proc.markers_dropped + ' more VMA changes are not marked.');
    if (proc.faults_unattributed) notes.push(proc.faults_unattributed + ' faults outside any VMA.');
    document.getElementById('notice').textContent = notes.join(' ');
    drawMemory();
  }

  function selectProcess(pid) {
    proc = data.processes.filter(function (p) { return p.pid === pid; })[0] || data.processes[0];
    posLo = proc.segments.map(function (s) { return axisPos(s[0]); });
    posHi = proc.segments.map(function (s) { return axisPos(s[1]); });
    noAccess = proc.segments.map(function (s) { return s[8].substr(0, 3) === '---'; });
    markerPos = proc.markers.map(function (m) { return axisPos((m[2] + m[3]) / 2); });
    heatOf = {};
    proc.heat.forEach(function (c) { (heatOf[c[0]] || (heatOf[c[0]] = [])).push(c); });
    var kinds = Object.keys(MARKER_COLORS);
    markerKind = proc.markers.map(function (m) { var k = kinds.indexOf(m[1]); return k < 0 ? 15 : k; });
    document.getElementById('process').value = String(proc.pid);
    selected = null;
    document.getElementById('layout').textContent = '';
    document.getElementById('around').textContent = '';
    document.getElementById('layout-time').textContent = '(click the timeline)';
    resize();
    resetView();
    showPanels();
  }

  // ---- start ----
  document.getElementById('source').textContent = data.file + (data.command ? ' — ' + data.command : '') +
    ' — ' + data.records + ' records, ' + seconds(data.t_end);
  if (data.perfetto) {
    var link = document.getElementById('perfetto');
    link.href = data.perfetto;
    link.textContent = 'Perfetto trace: ' + data.perfetto;
    link.hidden = false;
  }
  var legend = d3.select('#legend');
  data.kinds.forEach(function (k) {
    var s = legend.append('span');
    s.append('i').style('background', KIND_COLORS[k]);
    s.append('b').text(k);
  });
  legend.append('span').html('<i style="background:rgba(220,0,0,.6)"></i>faults');
  var picker = d3.select('#process');
  picker.selectAll('option').data(data.processes).enter().append('option')
    .attr('value', function (p) { return p.pid; })
    .text(function (p) { return p.pid + ' ' + p.comm + ' (' + p.segments.length + ' VMAs over time)'; });
  picker.on('change', function () { selectProcess(+this.value); });
  document.getElementById('reset').addEventListener('click', resetView);
  window.addEventListener('resize', function () { resize(); draw(); drawMemory(); });

  // The test hook: geometry and data, so that tests check positions, not pixels.
  window.vmatraceTimeline = {
    data: data,
    selectProcess: function (pid) { selectProcess(pid); },
    selectTime: function (t) { selectTime(t); },
    draw: function () { draw(); },
    layoutAt: function (t) { return layoutAt(t); },
    timeToX: function (t) { return x(t); },
    xToTime: function (px) { return Math.max(0, Math.round(x.invert(px))); },
    addrToY: function (a) { return y(axisPos(a)); },
    hoverText: hoverText,
    query: function () {
      return {
        pid: proc.pid,
        selected: selected,
        layout: document.getElementById('layout').textContent,
        plot: { left: MARGIN.left, right: width - MARGIN.right, top: MARGIN.top, bottom: height - MARGIN.bottom },
        bands: proc.segments.map(function (s, i) {
          var g = 4 * i;
          return { start: hex(s[0]), end: hex(s[1]), t_begin: s[2], t_end: s[3], kind: data.kinds[s[4]], perms: s[8],
                   line: s[6], x0: geom[g], x1: geom[g + 1], y0: geom[g + 2], y1: geom[g + 3] };
        }),
        markers: markerGeom.map(function (g) {
          var m = proc.markers[g.i];
          return { t: m[0], kind: m[1], start: hex(m[2]), end: hex(m[3]), cause: m[4], x: g.x, y: g.y };
        }),
        markers_total: proc.markers.length,
        growth: growthGeom.map(function (g) {
          var m = proc.malloc_growth[g.i];
          return { t: m[0], addr: hex(m[1]), size: m[2], site: m[3], allocator: m[4], via: m[5],
                   vma_start: hex(m[6]), vma_end: hex(m[7]), x: g.x, y: g.y };
        }),
        malloc_panel: document.getElementById('malloc-panel').hidden ? null :
          (proc.malloc_sites || []).map(function (s) {
            return { allocator: s[0], function: s[1], location: s[2], count: s[3], bytes: s[4] };
          })
      };
    }
  };
  if (!data.processes.length) {
    document.getElementById('notice').textContent = 'The recording holds no process layouts.' +
      (data.damaged ? ' It is damaged: ' + data.damage : '');
    return;
  }
  // The process with the most VMAs over time first.
  var first = data.processes.slice().sort(function (a, b) { return b.segments.length - a.segments.length; })[0];
  selectProcess(first.pid);
})();
