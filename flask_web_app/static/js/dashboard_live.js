// Dashboard: the symbol's latest price and its new alerts arrive through the push channel
// (static/js/push.js; polling /api/quotes/latest and /api/alerts/latest?symbol= where streams
// are refused). Charts are dashboard.js's and are not touched here.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("live-config").textContent);
  var status = document.getElementById("live-status");
  var shown = null;

  function showQuote(q) {
    var p = document.getElementById("latest-quote");
    if (!p || q.symbol !== config.symbol || q.price === null) return;
    var t = p.querySelector("time");
    if (shown === null && t) shown = t.getAttribute("datetime");
    if (shown && Date.parse(q.timestamp) <= Date.parse(shown)) return;
    shown = q.timestamp;
    p.querySelector("strong").textContent = Number(q.price).toFixed(2);
    // Every quote says where it came from (yahoo / alpha_vantage / simulated), also when pushed.
    var source = document.getElementById("latest-source");
    if (source) source.textContent = q.source || "unknown";
    if (t) { t.setAttribute("datetime", q.timestamp); t.textContent = q.timestamp.slice(0, 19).replace("T", " "); }
  }

  function showAlert(a) {
    if (a.symbol !== config.symbol) return;
    var box = document.getElementById("symbol-alerts");
    // Already shown (rendered with the page, or a replay repeating it): the alert_key is its identity.
    if (a.alert_key && box.querySelector('li[data-key="' + CSS.escape(a.alert_key) + '"]')) return;
    var list = document.getElementById("alerts");
    if (!list) {
      list = document.createElement("ul"); list.className = "alerts"; list.id = "alerts"; box.appendChild(list);
      var none = document.getElementById("empty-alerts"); if (none) none.hidden = true;
    }
    var li = document.createElement("li");
    li.dataset.key = a.alert_key || "";
    li.className = "pushed";
    var rule = document.createElement("span"); rule.className = "rule"; rule.textContent = (a.rule || "").replace(/_/g, " ");
    var when = document.createElement("small");
    if (a.created_at) {  // static/js/localtime.js shows it in the viewer's time zone
      var t = document.createElement("time"); t.setAttribute("datetime", a.created_at);
      t.textContent = a.created_at.slice(0, 16).replace("T", " ") + " UTC"; when.appendChild(t);
    }
    li.appendChild(rule); li.appendChild(document.createTextNode(" " + a.message + " ")); li.appendChild(when);
    if (a.own) {  // the signed-in user's own rule (pushed to their streams only)
      var o = document.createElement("span"); o.className = "badge own"; o.textContent = "your rule";
      li.appendChild(document.createTextNode(" ")); li.appendChild(o);
    }
    list.insertBefore(li, list.firstChild);
  }

  function getJson(url) {
    return fetch(url, {cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  }

  // Polling mode (streams refused): the symbol's quote and its new alerts, as the stream would bring them.
  function poll() {
    var symbol = encodeURIComponent(config.symbol);
    getJson("/api/alerts/latest?symbol=" + symbol)  // oldest first, so the newest ends on top
      .then(function (body) { body.alerts.slice().reverse().forEach(showAlert); })
      .catch(function () {});  // a failed alerts read does not hold up the quote
    return getJson("/api/quotes/latest?symbols=" + symbol).then(function (body) { body.quotes.forEach(showQuote); });
  }

  LivePush.connect({
    after: config.stream_after, pollMs: config.refresh_ms, retryMs: Math.max(config.refresh_ms * 6, 10000), poll: poll,
    onQuote: showQuote, onAlert: showAlert,
    onMode: function (m, text) { status.dataset.mode = m; status.textContent = text; },
  });
})();
