/* The service map (templates/map.html; the incident page's small map of its propagation path): draws
 * GET /aiops/map with cytoscape and its dagre layout. The /map page carries its data (#map-data) and
 * polls for itself (static/live.js): after a cycle, the data comes from the page's new rendering, its
 * tables are swapped in by live.js. The incident page's map has no data block: it fetches data-src,
 * and again (with If-None-Match) when the page changes. An answer with a path (?incident=) marks the
 * path's nodes and calls, the root cause's node most, and dims the rest.
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
  if (!box || typeof window.cytoscape !== "function" || !window.aiopsLive) return;

  var STATUS_WORD = {incident: "◆ root cause", degraded: "▲ degraded", ok: "● ok", idle: "○ idle"};
  var SHAPE = {incident: "octagon", degraded: "triangle", ok: "ellipse", idle: "ellipse"};
  // Bigger maps than these keep their labels short (figures on hover, on tap and in the tables), so
  // a 40-service system stays readable; dagre lays nodes out around their labels (no overlaps).
  var EDGE_LABELS_UP_TO = 12, NODE_FIGURES_UP_TO = 12;
  var small = box.classList.contains("map-small");
  var empty = {nodes: [], edges: [], by: "service"};
  var data = source ? JSON.parse(source.textContent) : empty;
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
    var path = d.path || null, onPath = {}, pathEdges = {};
    if (path) {
      path.nodes.forEach(function (id) { onPath[id] = true; });
      path.edges.forEach(function (e) { pathEdges[JSON.stringify(e)] = true; });
    }
    function pathClass(on) { return path ? (on ? " on-path" : " off-path") : ""; }
    var nodes = d.nodes.map(function (n) {
      var classes = ["st-" + n.status];
      if (n.root) classes.push("root");
      if (n.external) classes.push("external");
      if (path) classes.push(n.id === path.root ? "path-root on-path" : (onPath[n.id] ? "on-path" : "off-path"));
      return {group: "nodes", data: {id: n.id, label: nodeLabel(n, figures), full: nodeLabel(n, true), shape: SHAPE[n.status], node: n},
              classes: classes.join(" ")};
    });
    var edges = d.edges.map(function (e) {
      var id = JSON.stringify([e.caller, e.callee]);
      return {group: "edges", data: {id: id, source: e.caller, target: e.callee, label: edgeLabel(e), edge: e},
              classes: (e.error_rate >= 0.05 ? "failing" : "") + (d.edges.length <= EDGE_LABELS_UP_TO ? " labelled" : "") +
                       pathClass(pathEdges[id])};
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
      // An incident's path (?incident=): its calls thick in the accent colour, the rest faded.
      {selector: ".off-path", style: {"opacity": 0.35}},
      {selector: "edge.on-path", style: {"line-color": css("--accent"), "target-arrow-color": css("--accent"),
                                         "width": 5, "line-style": "solid", "z-index": 5}},
      {selector: "node.on-path", style: {"border-color": css("--accent"), "border-width": 4}},
      {selector: "node.path-root", style: {"border-style": "double", "border-width": 8, "font-weight": "bold"}},
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
    box.style.height = (small ? Math.min(520, Math.max(280, 160 + 16 * cy.nodes().length))
                              : Math.min(1400, Math.max(420, 200 + 24 * cy.nodes().length))) + "px";
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
    if (!details) return;
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
  cy.on("tap", function (evt) { if (evt.target === cy && details) details.hidden = true; });
  cy.on("mouseover", "node, edge", function (evt) { evt.target.addClass("hover"); });
  cy.on("mouseout", "node, edge", function (evt) { evt.target.removeClass("hover"); });

  // -- live: after a cycle (static/live.js) -------------------------------------------------------

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
    state.data = d;
    state.updates += 1;
    box.dataset.updates = String(state.updates);
    box.dataset.path = d.path ? d.path.edges.length + " calls" : "";  // what a test can wait for
  }

  var answers = new window.aiopsLive.Source(box.dataset.src);
  function fetchMap() {
    return answers.get().then(function (r) { return r ? r.json() : null; })
      .then(function (d) { if (d) apply(d); box.dataset.error = ""; })
      .catch(function (err) { box.dataset.error = String(err.message || err); });
  }
  if (!source) fetchMap();  // the incident page's map: its data is fetched, not in the page
  window.aiopsLive.onChange(function (doc) {
    var fresh = source && doc.getElementById("map-data");
    if (fresh) apply(JSON.parse(fresh.textContent));
    else fetchMap();
  });
})();
