// Live prices page: quotes and alerts pushed by /api/stream (static/js/push.js; where streams
// are refused it polls /api/quotes/latest and /api/alerts/latest) update the table, the
// sparklines and the alerts in place (no reload). A signed-in user's own alerts come too. Config comes from the JSON block the page embeds.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("live-config").textContent);
  var spark = config.spark || {};
  var status = document.getElementById("live-status");
  var table = document.getElementById("quotes");
  var W = 120, H = 32;

  function points(values) {
    var v = values.filter(function (x) { return x !== null && x !== undefined; });
    if (!v.length) return "";
    // One quote: a dot where the newest point goes (present.sparkline_points draws it the same).
    if (v.length === 1) return [W - 2, W - 2].map(function (x) { return x.toFixed(1) + "," + (H / 2).toFixed(1); }).join(" ");
    var lo = Math.min.apply(null, v), hi = Math.max.apply(null, v), span = (hi - lo) || 1;
    var step = W / Math.max(v.length - 1, 1);
    return v.map(function (x, i) {
      return (i * step).toFixed(1) + "," + (H - 2 - (x - lo) / span * (H - 4)).toFixed(1);
    }).join(" ");
  }

  function fmt(n, digits) {
    return Number(n).toLocaleString("en-US", {minimumFractionDigits: digits, maximumFractionDigits: digits});
  }

  function update(q) {
    var row = table.querySelector('tr[data-symbol="' + q.symbol + '"]');
    // Same or older than shown (a poll repeating it, a late replay): nothing to change.
    if (!row || (row.dataset.timestamp && Date.parse(q.timestamp) <= Date.parse(row.dataset.timestamp))) return false;
    row.dataset.timestamp = q.timestamp;
    row.querySelector(".price").textContent = q.price === null ? "—" : fmt(q.price, 2).replace(/,/g, "");
    var chg = row.querySelector(".change");
    chg.className = "num change" + (q.change_percent > 0 ? " up" : q.change_percent < 0 ? " down" : "");
    chg.textContent = q.change_percent === null ? "—" : (q.change_percent > 0 ? "+" : "") + q.change_percent.toFixed(2) + "%";
    row.querySelector(".volume").textContent = q.volume === null ? "—" : fmt(q.volume, 0);
    var cell = row.querySelector(".time");
    var t = cell.querySelector("time") || document.createElement("time");
    t.setAttribute("datetime", q.timestamp);
    t.textContent = q.timestamp.slice(0, 19).replace("T", " ");
    if (!t.parentNode) { cell.textContent = ""; cell.appendChild(t); cell.appendChild(document.createTextNode(" ")); }
    var badge = cell.querySelector(".badge.sim");
    if (!badge) { badge = document.createElement("span"); badge.className = "badge sim"; badge.textContent = "simulated"; cell.appendChild(badge); }
    badge.hidden = !(q.source === "simulated" || q.source === "mixed");
    row.querySelector(".source").textContent = q.source || "—";
    // The phone's stand-in for the Source column (app.css): any other source by name.
    var src = cell.querySelector(".src");
    if (!src) { src = document.createElement("span"); src.className = "src"; cell.appendChild(src); }
    src.textContent = q.source || "";
    src.hidden = !badge.hidden || !q.source;
    var series = spark[q.symbol] || (spark[q.symbol] = []);
    series.push(q.price);
    while (series.length > config.spark_points) series.shift();
    row.querySelector(".spark polyline").setAttribute("points", points(series));
    var note = row.querySelector(".spark-note");
    if (note) note.hidden = series.filter(function (x) { return x !== null && x !== undefined; }).length !== 1;
    row.classList.add("fresh");
    setTimeout(function () { row.classList.remove("fresh"); }, 1500);
    return true;
  }

  // "Market closed" rather than a frozen live page: from the newest quotes' market_open flags.
  var marketText = JSON.parse(document.getElementById("market-text").textContent);
  var market = document.getElementById("market-status");
  function showMarket(quotes) {
    var flags = quotes.map(function (q) { return q.market_open; }).filter(function (f) { return f === true || f === false; });
    if (!flags.length) return;
    var state = flags.indexOf(true) >= 0 ? "open" : "closed";
    market.textContent = marketText[state];
    market.className = "market " + state;
    market.hidden = false;
  }

  function getJson(url) {
    return fetch(url, {headers: {"Accept": "application/json"}, cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  }

  // Polling mode: the alerts too (the system's and, signed in, the user's own), oldest first so
  // the newest ends on top; showAlert skips those already on the page by alert_key.
  function pollAlerts() {
    return getJson("/api/alerts/latest").then(function (body) { body.alerts.slice().reverse().forEach(showAlert); });
  }

  function poll() {
    pollAlerts().catch(function () {});  // a failed alerts read does not hold up the quotes
    return getJson("/api/quotes/latest")
      .then(function (body) {
        var changed = body.quotes.filter(update).length;
        showMarket(body.quotes);
        if (body.quotes.length) { var empty = document.getElementById("empty-quotes"); if (empty) empty.hidden = true; }
        status.textContent = mode + " · last checked " + new Date().toLocaleTimeString() + (changed ? " · " + changed + " updated" : "");
        status.className = "";
      })
      .catch(function (err) {
        status.textContent = "Live updates paused: " + err.message + " (retrying)";
        status.className = "stale";
      });
  }

  function showAlert(a) {
    var box = document.getElementById("latest-alerts");
    var list = box.querySelector("ul.alerts");
    if (!list) {
      list = document.createElement("ul"); list.className = "alerts"; box.appendChild(list);
      var none = box.querySelector(".notice.empty"); if (none) none.hidden = true;
    }
    // Already on the page (rendered with it, or a replay repeating it): the alert_key is its identity.
    if (a.alert_key && box.querySelector('li[data-key="' + CSS.escape(a.alert_key) + '"]')) return;
    var li = document.createElement("li");
    li.dataset.key = a.alert_key || "";
    li.className = "pushed";
    var sym = document.createElement("strong"); sym.textContent = a.symbol;
    var when = document.createElement("small");
    if (a.created_at) {  // static/js/localtime.js shows it in the viewer's time zone
      var t = document.createElement("time"); t.setAttribute("datetime", a.created_at);
      t.textContent = a.created_at.slice(0, 16).replace("T", " ") + " UTC"; when.appendChild(t);
    }
    li.appendChild(sym); li.appendChild(document.createTextNode(" " + a.message + " ")); li.appendChild(when);
    if (a.source === "simulated") {
      var b = document.createElement("span"); b.className = "badge sim"; b.textContent = "simulated";
      li.appendChild(document.createTextNode(" ")); li.appendChild(b);
    }
    if (a.own) {
      var o = document.createElement("span"); o.className = "badge own"; o.textContent = "your rule";
      li.appendChild(document.createTextNode(" ")); li.appendChild(o);
    }
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 5) list.removeChild(list.lastChild);
  }

  var mode = "Live";
  LivePush.connect({
    after: config.stream_after, pollMs: config.refresh_ms, retryMs: Math.max(config.refresh_ms * 6, 10000), poll: poll,
    onQuote: function (q) {
      if (update(q)) {
        showMarket([q]);
        var empty = document.getElementById("empty-quotes"); if (empty) empty.hidden = true;
        status.textContent = mode + " · last update " + new Date().toLocaleTimeString();
      }
    },
    onAlert: showAlert,
    onMode: function (m, text) { mode = text; status.dataset.mode = m; status.textContent = text; status.className = m === "push" ? "" : "stale"; },
  });
})();
