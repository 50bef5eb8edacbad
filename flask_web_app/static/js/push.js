// Push channel client shared by the live page and the dashboard: an EventSource on
// /api/stream from the page's cursor; the browser reconnects by itself with
// Last-Event-ID and the server replays what was stored meanwhile. Where streams are
// refused (a proxy, or 503 when the server holds its maximum) it polls instead and
// tries the stream again after a while. Each event carries its stored position (pos):
// a replay may repeat a few, which are dropped here. Alerts come as "alert" (the
// system's) and "own_alert" (a signed-in user's own rules'); both go to onAlert.
window.LivePush = (function () {
  "use strict";
  function connect(opts) {
    // opts: after (cursor), pollMs, retryMs, poll() -> Promise, onQuote(q), onAlert(a), onMode(mode, text)
    var cursor = opts.after || "";
    var seen = new Set(), order = [];
    var es = null, pollTimer = null, retryTimer = null;
    var pollText = "Polling every " + opts.pollMs / 1000 + " s";

    function fresh(pos) {
      if (!pos || seen.has(pos)) return false;
      seen.add(pos); order.push(pos);
      if (order.length > 5000) seen.delete(order.shift());
      return true;
    }
    function pollLoop() {
      opts.poll().catch(function () {}).finally(function () {
        if (pollTimer !== null) pollTimer = setTimeout(pollLoop, opts.pollMs);
      });
    }
    function fallBack(reason) {
      if (es) { es.close(); es = null; }
      opts.onMode("poll", pollText + " (" + reason + ")");
      if (pollTimer === null) { pollTimer = 0; pollLoop(); }
      clearTimeout(retryTimer);
      retryTimer = setTimeout(open, opts.retryMs);
    }
    function open() {
      if (!window.EventSource) { fallBack("this browser has no live stream"); return; }
      es = new EventSource("/api/stream" + (cursor ? "?after=" + encodeURIComponent(cursor) : ""));
      es.addEventListener("ready", function (e) {
        if (pollTimer !== null) { clearTimeout(pollTimer); pollTimer = null; }
        if (e.lastEventId) cursor = e.lastEventId;
        opts.onMode("push", "Live: pushed as stored");
      });
      es.addEventListener("quote", function (e) {
        cursor = e.lastEventId || cursor;
        var q = JSON.parse(e.data);
        if (fresh(q.pos)) opts.onQuote(q);
      });
      function alert(e) {
        cursor = e.lastEventId || cursor;
        var a = JSON.parse(e.data);
        if (fresh(a.pos)) opts.onAlert(a);
      }
      es.addEventListener("alert", alert);
      // The signed-in user's own alerts (the server sends them to their streams only; a.own).
      es.addEventListener("own_alert", alert);
      // More was stored while away than a replay sends: read the latest quotes once.
      es.addEventListener("resync", function () { opts.poll(); });
      es.onerror = function () {
        if (!es) return;
        if (es.readyState === EventSource.CLOSED) fallBack("live stream refused");
        else opts.onMode("reconnecting", "Reconnecting to the live stream…");
      };
    }
    open();
  }
  return {connect: connect};
})();
