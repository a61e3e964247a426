/* Charts of GET /aiops/series, drawn with uPlot (static/vendor/uplot), for the endpoint and incident pages.
 *
 * Every element with data-series is a chart group: its URL is fetched, and each [data-chart] inside it
 * (latency, errors, requests) is drawn from the answer. When the page changes (static/live.js polls
 * it) the group asks again with If-None-Match: a 304 until a detection cycle finishes (see
 * aiops/web/charts.py). No inline script (the CSP forbids it); names from
 * telemetry are only ever set as textContent or drawn on a canvas, never parsed as HTML.
 */
(function () {
  "use strict";
  if (typeof uPlot === "undefined" || !window.aiopsLive) { return; }  // the tables the server rendered stay

  var HEIGHTS = { latency: 260, errors: 150, requests: 150 };
  var MINI = 150;

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }
  function seconds(iso) { return iso ? Date.parse(iso) / 1000 : null; }
  function fmtMs(v) { return v == null ? "-" : (v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString("en")) + " ms"; }

  function columns(kind, data) {
    var pts = data.points, step = data.step || 1;
    var xs = pts.map(function (p) { return seconds(p.t); });
    if (kind === "latency") {
      return [xs, pts.map(function (p) { return p.p50_ms; }), pts.map(function (p) { return p.p95_ms; })];
    }
    if (kind === "errors") {
      return [xs, pts.map(function (p) { return p.error_rate == null ? null : p.error_rate * 100; })];
    }
    // per second of the bucket's time inside the range (the first and the current one are partial)
    var since = seconds(data.since), until = seconds(data.until);
    return [xs, pts.map(function (p, i) {
      var covered = Math.min(xs[i] + step, until) - Math.max(xs[i], since);
      return covered > 0 ? p.requests / covered : null;
    })];
  }

  function seriesOf(kind) {
    if (kind === "latency") {
      return [{ label: "p50", stroke: css("--c-p50"), width: 2, value: function (u, v) { return fmtMs(v); } },
              { label: "p95", stroke: css("--c-p95"), width: 2, dash: [6, 3], value: function (u, v) { return fmtMs(v); } }];
    }
    if (kind === "errors") {
      return [{ label: "errors %", stroke: css("--c-errors"), width: 2, fill: css("--c-band"),
                value: function (u, v) { return v == null ? "-" : v.toFixed(1) + "%"; } }];
    }
    return [{ label: "req/s", stroke: css("--c-requests"), width: 2, value: function (u, v) { return v == null ? "-" : v.toFixed(2); } }];
  }

  /* Under the series: the baseline band (baseline .. slow line) and the incidents' spans. */
  function drawUnder(group, kind) {
    return function (u) {
      var data = group.aiopsData, ctx = u.ctx, box = u.bbox;
      if (!data) { return; }
      ctx.save();
      ctx.beginPath(); ctx.rect(box.left, box.top, box.width, box.height); ctx.clip();
      (data.incidents || []).forEach(function (inc) {
        var from = u.valToPos(seconds(inc.first_detected), "x", true);
        var to = u.valToPos(seconds(inc.resolved_at) || seconds(data.until), "x", true);
        ctx.fillStyle = css("--c-incident");
        ctx.fillRect(from, box.top, Math.max(to - from, 2), box.height);
        ctx.fillStyle = css("--fg");
        ctx.font = (10 * devicePixelRatio) + "px system-ui, sans-serif";
        ctx.fillText(inc.id, from + 3, box.top + 12 * devicePixelRatio);  // canvas text: never markup
      });
      var base = data.baseline;
      if (kind === "latency" && base) {
        var y0 = u.valToPos(base.latency_ms, "y", true), y1 = u.valToPos(base.slow_above_ms, "y", true);
        ctx.fillStyle = css("--c-band");
        ctx.fillRect(box.left, Math.min(y0, y1), box.width, Math.abs(y0 - y1));
        ctx.strokeStyle = css("--c-base"); ctx.lineWidth = devicePixelRatio; ctx.setLineDash([4, 4]);
        ctx.beginPath(); ctx.moveTo(box.left, y0); ctx.lineTo(box.left + box.width, y0); ctx.stroke();
      }
      ctx.restore();
    };
  }

  /* Over the series: the incident page's detection and resolution times. */
  function drawOver(group) {
    return function (u) {
      var ctx = u.ctx, box = u.bbox;
      [["detected", group.dataset.detected], ["resolved", group.dataset.resolved]].forEach(function (m) {
        if (!m[1]) { return; }
        var x = u.valToPos(seconds(m[1]), "x", true);
        if (x < box.left || x > box.left + box.width) { return; }
        ctx.save();
        ctx.strokeStyle = css("--c-mark"); ctx.lineWidth = 2 * devicePixelRatio; ctx.setLineDash([3, 3]);
        ctx.beginPath(); ctx.moveTo(x, box.top); ctx.lineTo(x, box.top + box.height); ctx.stroke();
        ctx.fillStyle = css("--c-mark"); ctx.font = (11 * devicePixelRatio) + "px system-ui, sans-serif";
        ctx.fillText(m[0], x + 4, box.top + box.height - 6 * devicePixelRatio);
        ctx.restore();
      });
    };
  }

  function options(group, el, kind) {
    var mini = el.classList.contains("chart-mini");
    var grid = { stroke: css("--line"), width: 1 };
    var yValues = kind === "latency" ? function (u, vals) { return vals.map(fmtMs); } : undefined;
    return {
      width: Math.max(el.clientWidth, 200),
      height: mini ? MINI : HEIGHTS[kind],
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      legend: { show: !mini },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: function () {
          var d = group.aiopsData; return [seconds(d.since), seconds(d.until)];
        } },
        y: { range: function (u, min, max) {
          var top = Math.max(max || 0, kind === "latency" && group.aiopsData.baseline ? group.aiopsData.baseline.slow_above_ms : 0);
          return [0, kind === "errors" ? Math.max(top, 5) : (top || 1) * 1.1];
        } },
      },
      axes: [
        { stroke: css("--muted"), grid: grid, ticks: grid },
        { stroke: css("--muted"), grid: grid, ticks: grid, size: 70, values: yValues },
      ],
      series: [{ value: "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss} UTC" }].concat(seriesOf(kind)),
      hooks: { drawAxes: [drawUnder(group, kind)], draw: [drawOver(group)] },
    };
  }

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
  }

  /* The server-rendered tables of the group, kept in step with the charts. */
  function updateTables(group, data) {
    var body = group.querySelector("table.points tbody");
    if (body) {
      body.textContent = "";
      data.points.slice().reverse().forEach(function (p) {
        if (!p.requests) { return; }
        var tr = document.createElement("tr");
        cell(tr, p.t, "nowrap"); cell(tr, String(p.requests), "num"); cell(tr, fmtMs(p.p50_ms), "num");
        cell(tr, fmtMs(p.p95_ms), "num"); cell(tr, fmtMs(p.baseline_ms), "num");
        cell(tr, (p.error_rate * 100).toFixed(1) + "%", "num");
        body.appendChild(tr);
      });
    }
    var incidents = document.querySelector("#endpoint-incidents tbody");
    if (incidents && group.id === "charts") {
      incidents.textContent = "";
      data.incidents.forEach(function (inc) {
        var tr = document.createElement("tr"), td = document.createElement("td"), a = document.createElement("a");
        a.href = "/incidents/" + encodeURIComponent(inc.id);
        var code = document.createElement("code"); code.textContent = inc.id; a.appendChild(code);
        td.appendChild(a); tr.appendChild(td);
        cell(tr, inc.root ? "root cause" : "affected"); cell(tr, inc.severity); cell(tr, inc.status);
        cell(tr, inc.title); cell(tr, inc.first_detected, "nowrap"); cell(tr, inc.resolved_at || "-", "nowrap");
        incidents.appendChild(tr);
      });
    }
    document.querySelectorAll(".chart-updated").forEach(function (el) {
      el.textContent = new Date().toISOString().slice(0, 19) + "Z";
    });
  }

  function draw(group, data) {
    group.aiopsData = data;
    group.aiopsPlots = group.aiopsPlots || {};
    group.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.closest("[data-series]") !== group) { return; }
      var kind = el.dataset.chart, cols = columns(kind, data), plot = group.aiopsPlots[kind];
      if (plot) { plot.setData(cols); } else { group.aiopsPlots[kind] = new uPlot(options(group, el, kind), cols, el); }
    });
    group.dataset.points = String(data.points.length);  // what a test (or a curious user) can read
    updateTables(group, data);
  }

  /* The group's data: GET data-series with its ETag (static/live.js' Source); a 304 keeps the drawing. */
  function load(group) {
    group.aiopsSource = group.aiopsSource || new window.aiopsLive.Source(group.dataset.series);
    return group.aiopsSource.get()
      .then(function (r) { return r ? r.json() : null; })
      .then(function (data) { if (data) { draw(group, data); } group.dataset.error = ""; })
      .catch(function (err) { group.dataset.error = String(err.message || err); });
  }

  var groups = document.querySelectorAll("[data-series]");
  groups.forEach(load);
  // The page polls for itself (live.js): after a cycle, each chart asks for its data again.
  window.aiopsLive.onChange(function () { groups.forEach(load); });

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      document.querySelectorAll("[data-series]").forEach(function (group) {
        Object.keys(group.aiopsPlots || {}).forEach(function (kind) {
          var plot = group.aiopsPlots[kind];
          plot.setSize({ width: Math.max(plot.root.parentNode.clientWidth, 200), height: plot.height });
        });
      });
    }, 150);
  });
})();
