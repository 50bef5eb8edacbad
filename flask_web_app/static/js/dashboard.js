// Dashboard charts: each .chart names a JSON block holding a plotly figure
// built by the server (flask_web_app/present.py).
(function () {
  "use strict";
  document.querySelectorAll(".chart[data-figure]").forEach(function (el) {
    var fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    if (window.StockCharts) fig = StockCharts.prepare(el, fig);  // theme, market time (chart_theme.js)
    Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false}).then(function () {
      el.dataset.rendered = "true";
    });
  });
  var select = document.getElementById("symbol-select");
  if (select) select.addEventListener("change", function () { select.form.submit(); });
})();
