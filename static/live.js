/* Live pages by conditional polling (aiops/web/live.py): the one place the pages poll.
 *
 * A live page carries #live-status with data-live-etag (the ETag it was rendered under) and
 * data-live-poll (seconds). Every few seconds, while the tab is visible, the page asks for its own
 * address again with If-None-Match. Until a detection cycle finishes or an incident changes the
 * server answers 304 from two single-row reads (no span, no template); otherwise it renders the
 * page once, and its [data-live] parts (each with an id) replace this page's, parsed by DOMParser
 * (nothing in them runs) and never while they hold the keyboard focus (a form being filled). Then
 * the page's drawings (charts.js, map.js) are told, through aiopsLive.onChange, to read their own
 * data again. Without JavaScript a <noscript> refresh reloads the page instead.
 *
 * Telemetry strings only ever arrive inside the server's own escaped rendering or as textContent.
 */
(function () {
  "use strict";

  var listeners = [];

  /* A URL asked with If-None-Match: get() resolves to the Response, or null for a 304. */
  function Source(url, etag) { this.url = url; this.etag = etag || null; }
  Source.prototype.get = function () {
    var self = this;
    var headers = self.etag ? {"If-None-Match": self.etag} : {};
    return fetch(self.url, {headers: headers, cache: "no-store", credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 304) return null;
        if (!r.ok) throw new Error("HTTP " + r.status);
        self.etag = r.headers.get("ETag") || self.etag;
        return r;
      });
  };

  function say(text) {
    var status = document.getElementById("live-status");
    if (status) status.textContent = text;
  }

  /* Replace this page's [data-live][id] parts with those of ``doc`` (the page as rendered now). */
  function swap(doc) {
    document.querySelectorAll("[data-live][id]").forEach(function (el) {
      var fresh = doc.getElementById(el.id);
      if (fresh && !el.contains(document.activeElement)) el.replaceWith(document.importNode(fresh, true));
    });
    if (doc.title) document.title = doc.title;
    document.body.dataset.liveSwaps = String((+document.body.dataset.liveSwaps || 0) + 1);
  }

  /* Ask ``source`` every ``seconds`` while the tab is visible; ``changed(response)`` on a 200. */
  function watch(source, seconds, changed) {
    var every = Math.max(1, seconds || 2) * 1000;
    function tick() {
      if (document.hidden) { window.setTimeout(tick, every); return; }
      source.get()
        .then(function (r) { return r ? changed(r) : null; })
        .then(function () { say("live · checked " + new Date().toLocaleTimeString()); })
        .catch(function (err) { say("live updates paused: " + (err.message || err) + " (retrying)"); })
        .finally(function () { window.setTimeout(tick, every); });
    }
    window.setTimeout(tick, every);
  }

  window.aiopsLive = {
    Source: Source,
    /* fn(doc) after every change of the page (doc: its new rendering, already swapped in). */
    onChange: function (fn) { listeners.push(fn); },
  };

  var status = document.getElementById("live-status");
  if (!status || !status.dataset.liveEtag) return;  // not a live page, or paused (?refresh=0)
  var page = new Source(location.href, status.dataset.liveEtag);
  watch(page, Number(status.dataset.livePoll), function (r) {
    return r.text().then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      swap(doc);
      listeners.forEach(function (fn) {
        try { fn(doc); } catch (err) { say("live update failed: " + err.message); }
      });
    });
  });
})();
