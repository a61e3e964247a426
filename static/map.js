/* The service map page (templates/map.html): draws GET /aiops/map with cytoscape and its dagre layout,
 * then asks again every few seconds with If-None-Match. The server answers 304 until a detection
 * cycle finishes or an incident changes (aiops/web/map.py), so polling costs it two indexed reads.
 *
 * Every name here came from telemetry and is hostile: node and edge labels are cytoscape data, drawn
 * on a canvas as text; the tables and the details panel are built with textContent and attributes,
 * never innerHTML. Colours come from CSS variables (static/map.css: a colour-blind-safe palette, dark
 * mode), and status is also said by shape, border and a word in the label, never by colour alone.
 */
(function () {
  "use strict";

  var box = document.getElementById("map");
  var source = document.getElementById("map-data");
  if (!box || !source || typeof window.cytoscape !== "function") return;

  var STATUS_WORD = {incident: "◆ root cause", degraded: "▲ degraded", ok: "● ok", idle: "○ idle"};
  var SHAPE = {incident: "octagon", degraded: "triangle", ok: "ellipse", idle: "ellipse"};
  // Bigger maps than these keep their labels short (figures on hover, on tap and in the tables), so
  // a 40-service system stays readable; dagre lays nodes out around their labels (no overlaps).
  var EDGE_LABELS_UP_TO = 12, NODE_FIGURES_UP_TO = 12;
  var data = JSON.parse(source.textContent);
  var etag = box.dataset.etag ? '"' + box.dataset.etag + '"' : null;
  var pollMs = Math.max(1, Number(box.dataset.poll) || 2) * 1000;
  var range = {since: box.dataset.since, until: box.dataset.until};

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  function fmtMs(v) { // as the pages' "ms" filter (aiops/web/pages.py fmt_ms)
    if (v === null || v === undefined) return "-";
    if (v === 0) return "0 ms";
    return Math.abs(v) < 100 ? v.toFixed(1) + " ms" : Math.round(v).toLocaleString("en-US") + " ms";
  }
  function pct(rate) { return (rate * 100).toFixed(1) + "%"; }
  function perS(rate) { return rate.toFixed(3); } // as the tables: calls a second
  function rate(r) { // a label's call rate, in the unit that keeps it readable
    if (r >= 10) return Math.round(r) + "/s";
    if (r >= 0.1) return r.toFixed(1) + "/s";
    return (r * 60).toFixed(r * 60 >= 10 ? 0 : 1) + "/min";
  }

  function endpointUrl(service, endpoint) {
    return "/services/" + encodeURIComponent(service) + "/endpoints/" + encodeURIComponent(endpoint);
  }
  function tracesUrl(filter) {
    var q = new URLSearchParams({service: filter.service});
    if (filter.endpoint) q.set("endpoint", filter.endpoint);
    if (range.since) q.set("since", range.since);
    if (range.until) q.set("until", range.until);
    return "/traces?" + q.toString();
  }

  function nodeLabel(n, figures) {
    var lines = [n.id];
    if (figures) lines.push(rate(n.calls_per_s) + " · " + pct(n.error_rate) + " err · p95 " + fmtMs(n.p95_ms));
    if (n.status !== "ok") lines.push(STATUS_WORD[n.status]);
    if (n.external) lines.push("external");
    return lines.join("\n");
  }
  function edgeLabel(e) {
    return rate(e.calls_per_s) + " · " + pct(e.error_rate) + " · p95 " + fmtMs(e.p95_ms);
  }

  function elements(d) {
    var figures = d.nodes.length <= NODE_FIGURES_UP_TO;
    var nodes = d.nodes.map(function (n) {
      var classes = ["st-" + n.status];
      if (n.root) classes.push("root");
      if (n.external) classes.push("external");
      return {group: "nodes", data: {id: n.id, label: nodeLabel(n, figures), full: nodeLabel(n, true), shape: SHAPE[n.status], node: n},
              classes: classes.join(" ")};
    });
    var edges = d.edges.map(function (e) {
      return {group: "edges", data: {id: JSON.stringify([e.caller, e.callee]), source: e.caller,
                                     target: e.callee, label: edgeLabel(e), edge: e},
              classes: (e.error_rate >= 0.05 ? "failing" : "") + (d.edges.length <= EDGE_LABELS_UP_TO ? " labelled" : "")};
    });
    return nodes.concat(edges);
  }

  function styles() {
    var fg = css("--fg"), line = css("--map-edge");
    return [
      {selector: "node", style: {
        "label": "data(label)", "shape": "data(shape)", "width": 30, "height": 30,
        "background-color": css("--map-ok"), "border-width": 2, "border-color": fg,
        "color": fg, "font-size": 12, "text-wrap": "wrap", "text-max-width": 220,
        "text-valign": "bottom", "text-halign": "center", "text-margin-y": 4,
        "text-background-color": css("--card"), "text-background-opacity": 0.85, "text-background-padding": 2}},
      {selector: "node.st-degraded", style: {"background-color": css("--map-degraded")}},
      {selector: "node.st-incident", style: {"background-color": css("--map-incident"), "width": 40, "height": 40}},
      {selector: "node.st-idle", style: {"background-color": css("--map-idle"), "background-opacity": 0.35,
                                         "border-style": "dotted"}},
      {selector: "node.external", style: {"border-style": "dashed", "border-color": css("--map-external"),
                                          "border-width": 3}},
      {selector: "node.root", style: {"border-style": "double", "border-width": 7, "font-weight": "bold"}},
      {selector: "node:selected", style: {"overlay-color": css("--accent"), "overlay-opacity": 0.2}},
      {selector: "edge", style: {
        "width": 2, "line-color": line, "target-arrow-color": line, "target-arrow-shape": "triangle",
        "curve-style": "bezier", "arrow-scale": 1.2, "font-size": 10, "color": fg,
        "text-background-color": css("--card"), "text-background-opacity": 0.85, "text-background-padding": 1,
        "text-rotation": "autorotate"}},
      {selector: "edge.labelled, edge:selected, edge.hover", style: {"label": "data(label)"}},
      {selector: "node.hover, node:selected", style: {"label": "data(full)", "z-index": 10}},
      {selector: "edge.failing", style: {"line-color": css("--map-incident"), "target-arrow-color": css("--map-incident"),
                                         "line-style": "dashed", "width": 3}},
    ];
  }

  var cy = window.cytoscape({
    container: box, elements: elements(data), style: styles(), wheelSensitivity: 0.3,
    minZoom: 0.2, maxZoom: 3, boxSelectionEnabled: false,
  });
  if (window.matchMedia) { // the browser's dark mode switched: the canvas takes the new colours too
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { cy.style(styles()); });
  }
  var state = {cy: cy, data: data, updates: 0,
               go: function (url) { window.location.assign(url); }};
  window.aiopsMap = state; // read by tests/e2e/test_map.py

  function layout() {
    var name = typeof window.cytoscapeDagre === "function" ? "dagre" : "breadthfirst";
    // Taller for bigger maps (the page scrolls), so 40 services still fit at a legible zoom.
    box.style.height = Math.min(1400, Math.max(420, 200 + 24 * cy.nodes().length)) + "px";
    cy.resize();
    cy.layout({name: name, rankDir: "LR", nodeSep: 16, rankSep: 90, edgeSep: 12, padding: 24,
               nodeDimensionsIncludeLabels: true,
               directed: true, fit: true, animate: false}).run();
    if (cy.zoom() > 1) { cy.zoom(1); cy.center(); } // a small map keeps its text size
  }
  layout();

  // -- details, links ----------------------------------------------------------------------------

  var details = document.getElementById("map-details");
  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function showNode(n) {
    details.replaceChildren();
    details.appendChild(el("h3", n.id));
    details.appendChild(el("p", STATUS_WORD[n.status] + (n.external ? " · external" : "")));
    details.appendChild(el("p", perS(n.calls_per_s) + " calls/s · " + pct(n.error_rate) + " errors · p95 " + fmtMs(n.p95_ms)));
    n.incidents.forEach(function (id) {
      details.appendChild(el("a", (n.root ? "root cause · " : "affected · ") + id,
                             {href: "/incidents/" + encodeURIComponent(id), class: "health health-" + (n.root ? "incident" : "touched")}));
    });
    var list = el("ul", null, {class: "map-endpoints"});
    (n.endpoints || []).forEach(function (e) {
      var li = el("li");
      li.appendChild(el("a", e.endpoint, {href: endpointUrl(n.service, e.endpoint), class: "ep-link"}));
      li.appendChild(document.createTextNode(" " + perS(e.calls_per_s) + "/s · " + pct(e.error_rate) + " · p95 " + fmtMs(e.p95_ms)));
      list.appendChild(li);
    });
    if (list.childNodes.length) details.appendChild(list);
    details.hidden = false;
  }

  cy.on("tap", "node", function (evt) {
    var n = evt.target.data("node");
    if (n.endpoint && !n.external) state.go(endpointUrl(n.service, n.endpoint));
    else showNode(n);
  });
  cy.on("tap", "edge", function (evt) { state.go(tracesUrl(evt.target.data("edge").traces)); });
  cy.on("tap", function (evt) { if (evt.target === cy) details.hidden = true; });
  cy.on("mouseover", "node, edge", function (evt) { evt.target.addClass("hover"); });
  cy.on("mouseout", "node, edge", function (evt) { evt.target.removeClass("hover"); });

  // -- the tables under the drawing (the page without JavaScript shows the same) --------------------

  function cell(text, cls) { return el("td", text, cls ? {class: cls} : null); }
  function fillTables(d) {
    var nodes = document.querySelector("#map-nodes tbody"), edges = document.querySelector("#map-edges tbody");
    nodes.replaceChildren.apply(nodes, d.nodes.map(function (n) {
      var tr = el("tr", null, {class: "mnode mnode-" + n.status});
      var name = cell(null);
      name.appendChild(el("span", n.id, {class: "node-name"}));
      if (n.external) { name.appendChild(document.createTextNode(" ")); name.appendChild(el("span", "external", {class: "muted"})); }
      else if (d.by === "endpoint") { name.appendChild(document.createTextNode(" ")); name.appendChild(el("span", n.service, {class: "svc"})); }
      var status = cell(null);
      status.appendChild(el("span", STATUS_WORD[n.status], {class: "mstatus mstatus-" + n.status}));
      var links = cell(null);
      var eps = n.endpoint && !n.external ? [n.endpoint] : (n.endpoints || []).map(function (e) { return e.endpoint; });
      eps.forEach(function (ep) {
        links.appendChild(el("a", ep, {class: "ep-link", href: endpointUrl(n.service, ep)}));
        links.appendChild(document.createTextNode(" "));
      });
      n.incidents.forEach(function (id) {
        links.appendChild(el("a", id, {class: "health health-" + (n.root ? "incident" : "touched"),
                                       href: "/incidents/" + encodeURIComponent(id)}));
        links.appendChild(document.createTextNode(" "));
      });
      [name, status, cell(perS(n.calls_per_s), "num"), cell(pct(n.error_rate), "num"), cell(fmtMs(n.p95_ms), "num"), links]
        .forEach(function (c) { tr.appendChild(c); });
      return tr;
    }));
    edges.replaceChildren.apply(edges, d.edges.map(function (e) {
      var tr = el("tr", null, {class: "medge"});
      var link = cell(null);
      link.appendChild(el("a", "traces", {class: "traces-link", href: tracesUrl(e.traces)}));
      [cell(e.caller, "edge-caller"), cell(e.callee, "edge-callee"), cell(perS(e.calls_per_s), "num"),
       cell(pct(e.error_rate), "num"), cell(fmtMs(e.p95_ms), "num"), link].forEach(function (c) { tr.appendChild(c); });
      return tr;
    }));
    document.getElementById("map-nodes").hidden = !d.nodes.length;
    document.getElementById("map-nodes-empty").hidden = !!d.nodes.length;
    document.getElementById("map-edges").hidden = !d.edges.length;
    document.getElementById("map-edges-empty").hidden = !!d.edges.length;
    document.getElementById("map-range").textContent = d.since + " – " + d.until;
    document.getElementById("map-spans").textContent = d.spans_read + " spans read" +
      (d.sampled ? " (a sample: rates are estimates)" : "");
  }

  // -- live: conditional polling -------------------------------------------------------------------

  function apply(d) {
    var before = cy.elements().map(function (e) { return e.id(); }).sort().join("\n");
    var next = elements(d);
    var after = next.map(function (e) { return e.data.id; }).sort().join("\n");
    cy.batch(function () {
      if (before !== after) {
        cy.elements().remove();
        cy.add(next);
      } else {
        next.forEach(function (e) { cy.getElementById(e.data.id).data(e.data).classes(e.classes); });
      }
    });
    if (before !== after) layout();
    fillTables(d);
    state.data = d;
    state.updates += 1;
    box.dataset.updates = String(state.updates);
  }

  var live = document.getElementById("map-live");
  function poll() {
    if (document.hidden) { window.setTimeout(poll, pollMs); return; }
    var headers = etag ? {"If-None-Match": etag} : {};
    fetch(box.dataset.src, {headers: headers, cache: "no-store", credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 304) return null;
        if (!r.ok) throw new Error("HTTP " + r.status);
        etag = r.headers.get("ETag");
        return r.json();
      })
      .then(function (d) {
        if (d) apply(d);
        live.textContent = "live · checked " + new Date().toLocaleTimeString();
      })
      .catch(function (err) { live.textContent = "live updates paused: " + err.message + " (retrying)"; })
      .finally(function () { window.setTimeout(poll, pollMs); });
  }
  window.setTimeout(poll, pollMs);
})();
