"""The viewer's JavaScript (a Python string so that it ships with the package without package-data).

See :mod:`landform.report.viewer`; the code needs plotly.js on the page (the report embeds it once).
"""

VIEWER_JS = r"""
/* landform viewer: 2-D slices and 3-D volumes of an n-D array embedded in the page, moved by sliders.
   One dataset (base64 float32 values in C order, optional basin labels, axes, markers) serves every component
   that names it. A component is a <div class="lf-viewer" data-spec="..."> holding .lf-plot, sliders
   (input.lf-slider[data-axis]) and a .lf-coords line; LFViewer.mount(id) draws it. */
(function () {
  if (window.LFViewer) return;
  var DATA = {};
  function decode(b64, T) {
    var s = atob(b64), u = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    return new T(u.buffer);
  }
  function dataset(id) {
    if (DATA[id]) return DATA[id];
    var d = JSON.parse(document.getElementById(id).textContent);
    d.v = decode(d.values, Float32Array);
    d.b = d.basins ? decode(d.basins, d.basins_dtype === "u2" ? Uint16Array : Uint8Array) : null;
    var n = d.shape.length, s = 1;
    d.stride = new Array(n);
    for (var k = n - 1; k >= 0; k--) { d.stride[k] = s; s *= d.shape[k]; }
    DATA[id] = d;
    return d;
  }
  function fmt(x) {
    if (x === null || !isFinite(x)) return String(x);
    var a = Math.abs(x);
    return (a >= 1e4 || (a < 1e-3 && a !== 0)) ? x.toExponential(3) : String(+x.toPrecision(4));
  }
  function tick(d, k, i) { return d.ticks && d.ticks[k] ? d.ticks[k][i] : fmt(d.axes[k][i]); }
  function tr(d, v) { return d.log ? Math.log10(v) : v; }
  function inSlice(m, st, free) {
    for (var k = 0; k < st.length; k++) {
      if (free.indexOf(k) >= 0) continue;
      var q = m.idx[k];
      if (q !== null && q !== st[k]) return false;
    }
    return true;
  }
  function offset(d, st, free) {
    var o = 0;
    for (var k = 0; k < st.length; k++) if (free.indexOf(k) < 0) o += st[k] * d.stride[k];
    return o;
  }
  function lossAxis(d) {
    var lo = tr(d, d.vmin), hi = tr(d, d.vmax);
    if (!(hi > lo)) hi = lo + 1;
    var cb = { title: { text: d.log ? "loss (log scale)" : "loss" }, len: 0.85, thickness: 14 };
    if (d.log) {
      var tv = [], tt = [];
      for (var e = Math.ceil(lo); e <= Math.floor(hi); e++) { tv.push(e); tt.push(fmt(Math.pow(10, e))); }
      if (tv.length < 2) { tv = [lo, hi]; tt = [fmt(d.vmin), fmt(d.vmax)]; }
      cb.tickvals = tv; cb.ticktext = tt;
    }
    return { colorscale: "Viridis", cmin: lo, cmax: hi, colorbar: cb };
  }
  function basinAxis(d) {
    var K = Math.max(1, d.basin_colors.length), cs = [];
    for (var k = 0; k < K; k++) { var c = d.basin_colors[k] || "#b0b0b0"; cs.push([k / K, c], [(k + 1) / K, c]); }
    return { colorscale: cs, cmin: 0.5, cmax: K + 0.5, showscale: false };
  }
  function markerStyle(ms) {
    return {
      symbol: ms.map(function (m) { return m.symbol || (m.kind === "minimum" ? "triangle-down" : "circle"); }),
      color: ms.map(function (m) { return m.color; }),
      size: ms.map(function (m) { return m.kind === "minimum" ? 11 : 8; }),
      line: { color: ms.map(function (m) { return m.kind === "saddle" ? "#000" : "#fff"; }), width: 1 },
    };
  }
  function sliders(root, st, render) {
    var inputs = Array.prototype.slice.call(root.querySelectorAll("input.lf-slider"));
    inputs.forEach(function (s) {
      s.addEventListener("input", function () { st[+s.dataset.axis] = +s.value; render(); });
    });
    return function sync() { inputs.forEach(function (s) { s.value = st[+s.dataset.axis]; }); };
  }
  function showState(root, d, st) {
    root.dataset.state = st.join(",");
    var line = d.names.map(function (nm, k) { return nm + " = " + tick(d, k, st[k]); }).join(", ");
    var c = root.querySelector(".lf-coords");
    if (c) c.textContent = "current point: " + line;
    Array.prototype.forEach.call(root.querySelectorAll(".lf-val"), function (el) {
      var k = +el.dataset.axis;
      el.textContent = tick(d, k, st[k]);
    });
  }
  function aname(p, a) { return a + (p > 0 ? p + 1 : ""); }

  function slices(root, spec) {
    var d = dataset(spec.data), st = d.anchor.slice(), mode = "loss", plot = root.querySelector(".lf-plot");
    var rows = spec.grid[0], cols = spec.grid[1], bound = false;
    function render() {
      var traces = [], paths = [], lay = {
        margin: { l: 10, r: 10, t: 10, b: 10 }, showlegend: false, hovermode: "closest",
        coloraxis: lossAxis(d), coloraxis2: basinAxis(d), uirevision: "keep",
      };
      spec.panels.forEach(function (ij, p) {
        var i = ij[0], j = ij[1], rc = spec.cells[p], g = 0.035;
        var xs = aname(p, "x"), ys = aname(p, "y");
        lay[aname(p, "xaxis")] = {
          domain: [rc[1] / cols + g, (rc[1] + 1) / cols - g], anchor: ys,
          title: { text: d.names[i], font: { size: 11 }, standoff: 2 }, tickfont: { size: 9 },
        };
        lay[aname(p, "yaxis")] = {
          domain: [1 - (rc[0] + 1) / rows + g * 1.4, 1 - rc[0] / rows - g * 0.2], anchor: xs,
          title: { text: d.names[j], font: { size: 11 }, standoff: 2 }, tickfont: { size: 9 },
        };
        if (d.ticks && d.ticks[i]) { lay[aname(p, "xaxis")].tickvals = d.axes[i]; lay[aname(p, "xaxis")].ticktext = d.ticks[i]; }
        if (d.ticks && d.ticks[j]) { lay[aname(p, "yaxis")].tickvals = d.axes[j]; lay[aname(p, "yaxis")].ticktext = d.ticks[j]; }
        var base = offset(d, st, [i, j]), z = [], c = [], t = [];
        for (var b = 0; b < d.shape[j]; b++) {
          var zr = new Array(d.shape[i]), cr = new Array(d.shape[i]), trow = mode === "basin" ? new Array(d.shape[i]) : null;
          for (var a = 0; a < d.shape[i]; a++) {
            var o = base + a * d.stride[i] + b * d.stride[j], v = d.v[o];
            cr[a] = v;
            if (mode === "basin") { zr[a] = d.b[o] + 1; trow[a] = d.basin_names[d.b[o]]; } else zr[a] = tr(d, v);
          }
          z.push(zr); c.push(cr); if (trow) t.push(trow);
        }
        var h = d.names[i] + " = %{x:.4g}<br>" + d.names[j] + " = %{y:.4g}<br>loss = %{customdata:.5g}";
        var hm = {
          type: "heatmap", x: d.axes[i], y: d.axes[j], z: z, customdata: c, xaxis: xs, yaxis: ys,
          coloraxis: mode === "basin" ? "coloraxis2" : "coloraxis", name: d.names[i] + " × " + d.names[j],
          hovertemplate: h + (mode === "basin" ? "<br>basin of %{text}" : "") + "<extra></extra>",
        };
        if (mode === "basin") hm.text = t;
        traces.push(hm);
        var ms = d.markers.filter(function (m) { return inSlice(m, st, [i, j]); }), groups = {};
        ms.forEach(function (m) { if (m.group) (groups[m.group] = groups[m.group] || []).push(m); });
        Object.keys(groups).forEach(function (g) {  // markers of one group joined by a line, drawn under them
          paths.push({
            type: "scatter", mode: "lines", name: g, xaxis: xs, yaxis: ys, hoverinfo: "skip",
            x: groups[g].map(function (m) { return m.at[i]; }), y: groups[g].map(function (m) { return m.at[j]; }),
            line: { color: "#fff", width: 2 },
          });
        });
        traces.push({
          type: "scatter", mode: "markers", name: "critical points", xaxis: xs, yaxis: ys,
          x: ms.map(function (m) { return m.at[i]; }), y: ms.map(function (m) { return m.at[j]; }),
          text: ms.map(function (m) { return m.text; }), hovertemplate: "%{text}<extra></extra>", marker: markerStyle(ms),
        });
        traces.push({
          type: "scatter", mode: "markers", name: "current point", xaxis: xs, yaxis: ys, hoverinfo: "skip",
          x: [d.axes[i][st[i]]], y: [d.axes[j][st[j]]],
          marker: { symbol: "cross-thin", size: 16, line: { width: 2, color: mode === "basin" ? "#000" : "#fff" } },
        });
      });
      Plotly.react(plot, traces.concat(paths), lay, { displaylogo: false, responsive: true });
      showState(root, d, st);
      if (!bound && plot.on) {
        bound = true;
        plot.on("plotly_click", function (ev) {
          var pt = ev.points[0], xa = pt.data.xaxis || "x", p = xa === "x" ? 0 : +xa.slice(1) - 1, ij = spec.panels[p];
          st[ij[0]] = nearest(d.axes[ij[0]], pt.x); st[ij[1]] = nearest(d.axes[ij[1]], pt.y);
          sync(); render();
        });
      }
    }
    function nearest(ax, x) {
      var best = 0;
      for (var q = 1; q < ax.length; q++) if (Math.abs(ax[q] - x) < Math.abs(ax[best] - x)) best = q;
      return best;
    }
    var sync = sliders(root, st, render);
    Array.prototype.forEach.call(root.querySelectorAll("input.lf-mode"), function (r) {
      r.addEventListener("change", function () { if (r.checked) { mode = r.value; root.dataset.mode = mode; render(); } });
    });
    root.dataset.mode = mode;
    render();
    drawn(plot);
  }

  function volume(root, spec) {
    var d = dataset(spec.data), st = d.anchor.slice(), plot = root.querySelector(".lf-plot"), va = spec.vaxes;
    function render() {
      var a = va[0], b = va[1], c = va[2], na = d.shape[a], nb = d.shape[b], nc = d.shape[c];
      var base = offset(d, st, va), N = na * nb * nc, X = new Array(N), Y = new Array(N), Z = new Array(N), V = new Array(N), q = 0;
      for (var ia = 0; ia < na; ia++) for (var ib = 0; ib < nb; ib++) for (var ic = 0; ic < nc; ic++) {
        X[q] = d.axes[a][ia]; Y[q] = d.axes[b][ib]; Z[q] = d.axes[c][ic];
        V[q] = tr(d, d.v[base + ia * d.stride[a] + ib * d.stride[b] + ic * d.stride[c]]); q++;
      }
      var ax = lossAxis(d);
      var iso = {
        type: "isosurface", x: X, y: Y, z: Z, value: V, isomin: spec.isomin, isomax: spec.isomax,
        surface: { count: spec.count, fill: 1 }, caps: { x: { show: false }, y: { show: false }, z: { show: false } },
        opacity: 0.3, colorscale: ax.colorscale, cmin: ax.cmin, cmax: ax.cmax, colorbar: ax.colorbar, name: "isosurfaces",
        hovertemplate: d.names[a] + " = %{x:.4g}<br>" + d.names[b] + " = %{y:.4g}<br>" + d.names[c] + " = %{z:.4g}<extra></extra>",
      };
      var ms = d.markers.filter(function (m) { return inSlice(m, st, va); });
      var pts = {
        type: "scatter3d", mode: "markers", name: "critical points",
        x: ms.map(function (m) { return m.at[a]; }), y: ms.map(function (m) { return m.at[b]; }), z: ms.map(function (m) { return m.at[c]; }),
        text: ms.map(function (m) { return m.text; }), hovertemplate: "%{text}<extra></extra>",
        marker: {
          symbol: ms.map(function (m) { return m.kind === "minimum" ? "diamond" : "circle"; }),
          color: ms.map(function (m) { return m.color; }), size: ms.map(function (m) { return m.kind === "minimum" ? 6 : 4; }),
          line: { color: "#000", width: 1 },
        },
      };
      var lay = {
        margin: { l: 0, r: 0, t: 10, b: 0 }, showlegend: false, uirevision: "keep",
        scene: { xaxis: { title: { text: d.names[a] } }, yaxis: { title: { text: d.names[b] } }, zaxis: { title: { text: d.names[c] } } },
      };
      Plotly.react(plot, [iso, pts], lay, { displaylogo: false, responsive: true });
      showState(root, d, st);
    }
    sliders(root, st, function () { if (!draw(root)) render(); });  // a slider moved before the lazy draw draws it
    showState(root, d, st);
    return render;
  }

  /* Lazy drawing: a view registered with later(el, draw) is drawn when it comes within 300 px of the viewport
     (IntersectionObserver), or, after the load event, one view per idle period in page order, whichever comes
     first; so the page opens with only the views in sight drawn and the rest follow without scrolling. */
  var QUEUE = [], observer = null, idleStarted = false;
  function drawn(view) {  // a performance mark per view drawn: benchmarks/report_view.py reads them
    if (view && window.performance && performance.mark) performance.mark("lf-drawn " + view.id);
  }
  function draw(el) {
    var item = null;
    for (var q = 0; q < QUEUE.length; q++) if (QUEUE[q].el === el) { item = QUEUE[q]; break; }
    if (item === null || item.done) return false;
    item.done = true;
    if (observer) observer.unobserve(el);
    item.fn();
    el.dataset.drawn = "1";
    drawn(el.matches("[data-lf-view]") ? el : el.querySelector("[data-lf-view]"));
    var wait = el.querySelector(".lf-wait");
    if (wait) wait.remove();
    return true;
  }
  function idle(fn) {
    if (window.requestIdleCallback) window.requestIdleCallback(fn, { timeout: 500 }); else setTimeout(fn, 30);
  }
  function drainIdle() {
    for (var q = 0; q < QUEUE.length; q++) {
      if (!QUEUE[q].done) { draw(QUEUE[q].el); idle(drainIdle); return; }
    }
  }
  function startIdle() {
    if (idleStarted) return;
    idleStarted = true;
    idle(drainIdle);
  }
  function later(el, fn) {
    QUEUE.push({ el: el, fn: fn, done: false });
    el.dataset.drawn = "0";
    if (window.IntersectionObserver) {
      if (!observer) observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (e) { if (e.isIntersecting) draw(e.target); });
      }, { rootMargin: "300px 0px" });
      observer.observe(el);
    }
    if (document.readyState === "complete") startIdle();
    else if (QUEUE.length === 1) window.addEventListener("load", startIdle);
  }
  /* printing (or saving as PDF) shows every view: draw the ones still waiting first */
  window.addEventListener("beforeprint", function () { QUEUE.forEach(function (it) { draw(it.el); }); });
  function figure(id) {
    var el = document.getElementById(id), fig = JSON.parse(document.getElementById(id + "-fig").textContent);
    var cfg = fig.config || { displaylogo: false, responsive: true };
    return function () { Plotly.newPlot(el, fig.data, fig.layout || {}, cfg); };
  }

  window.LFViewer = {
    dataset: dataset,
    /* draw the component #id now, or (lazy) when it comes into view or the page is idle */
    mount: function (id, lazy) {
      var root = document.getElementById(id), spec = JSON.parse(root.dataset.spec);
      if (spec.type === "volume") {
        var render = volume(root, spec);
        later(root, render);
        if (!lazy) draw(root);
      } else slices(root, spec);
    },
    /* a plotly figure embedded as JSON in #{id}-fig, drawn into #id lazily */
    figure: function (id) { later(document.getElementById(id), figure(id)); },
    drawOne: function (id) { draw(document.getElementById(id)); },
    /* draw every view not drawn yet (e.g. before printing) */
    drawAll: function () { QUEUE.forEach(function (it) { draw(it.el); }); },
  };
})();
"""
