// Times in the viewer's time zone with the market's beside it. The server writes every
// instant as <time datetime="…Z"> with UTC text (what a page without scripts shows); this
// rewrites the text to e.g. "16:30:05 CET · 10:30:05 EST market". data-format="clock" shows
// the time of day only (the live table), otherwise date and time. A <time> whose datetime
// another script changes later (the live table's updates) is rewritten too: a
// MutationObserver watches the page, so the scripts that fetch data need not know about it.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="market-tz"]');
  var MARKET = (meta && meta.content) || "America/New_York";
  var VIEWER = Intl.DateTimeFormat().resolvedOptions().timeZone;
  var cache = {};

  function formatter(zone, withDate, withName) {
    var key = [zone, withDate, withName].join("|");
    if (!cache[key]) {
      var opts = {timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"};
      if (withDate) { opts.year = "numeric"; opts.month = "2-digit"; opts.day = "2-digit"; }
      if (withName) opts.timeZoneName = "short";
      cache[key] = new Intl.DateTimeFormat("en-CA", opts);
    }
    return cache[key];
  }

  function parts(date, zone, withDate, withName) {
    var out = {};
    formatter(zone, withDate, withName).formatToParts(date).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }

  // "2026-01-13 10:30:05 EST" (or "10:30:05 EST" without the date).
  function text(date, zone, withDate) {
    var p = parts(date, zone, withDate, true);
    var clock = p.hour + ":" + p.minute + ":" + p.second;
    return (withDate ? p.year + "-" + p.month + "-" + p.day + " " : "") + clock + " " + p.timeZoneName;
  }

  // [viewer's text, market's text or null when the viewer is in the market's zone].
  function sides(iso, withDate) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return null;
    var mine = text(date, VIEWER, withDate);
    if (VIEWER === MARKET) return [mine + " (market time)", null];
    // The market's side needs no date when it is the viewer's calendar day too.
    var marketDate = parts(date, MARKET, true, false), viewerDate = parts(date, VIEWER, true, false);
    var sameDay = marketDate.day === viewerDate.day && marketDate.month === viewerDate.month;
    return [mine, text(date, MARKET, withDate && !sameDay) + " market"];
  }

  function label(iso, withDate) {
    var both = sides(iso, withDate);
    return both && (both[1] ? both[0] + " · " + both[1] : both[0]);
  }

  function span(cls, content) {
    var el = document.createElement("span");
    el.className = cls;
    el.textContent = content;
    return el;
  }

  // Two spans (each kept on one line by app.css; on a phone the live table stacks them).
  function rewrite(el) {
    var iso = el.getAttribute("datetime");
    if (!iso || iso.indexOf("T") < 0) return;  // a date alone has no time zone
    if (el.dataset.shown === iso && el.querySelector(".tz-viewer")) return;
    var both = sides(iso, el.dataset.format !== "clock");
    if (!both) return;
    el.dataset.shown = iso;
    el.title = "UTC " + iso.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, "");
    var children = [span("tz-viewer", both[0])];
    if (both[1]) children.push(span("tz-sep", " · "), span("tz-market", both[1]));
    el.replaceChildren.apply(el, children);
  }

  function rewriteAll(root) {
    if (root.matches && root.matches("time[datetime]")) rewrite(root);
    if (root.querySelectorAll) root.querySelectorAll("time[datetime]").forEach(rewrite);
  }

  rewriteAll(document);
  new MutationObserver(function (mutations) {
    mutations.forEach(function (m) {
      var node = m.target.nodeType === 1 ? m.target : m.target.parentNode;
      if (!node) return;
      var time = node.closest ? node.closest("time[datetime]") : null;
      if (time) rewrite(time); else rewriteAll(node);
    });
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true,
                             attributeFilter: ["datetime"]});

  // The market's wall clock of an instant, as plotly reads a date: "2026-01-13 10:30:05.123".
  function marketWallClock(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return iso;
    var p = parts(date, MARKET, true, false);
    var ms = String(date.getUTCMilliseconds()).padStart(3, "0");
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second + "." + ms;
  }

  function marketZoneName() {
    return parts(new Date(), MARKET, false, true).timeZoneName + ", " + MARKET;
  }

  window.StockTime = {label: label, marketWallClock: marketWallClock, marketZoneName: marketZoneName,
                      viewer: VIEWER, market: MARKET};
})();
