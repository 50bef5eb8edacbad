// Chart look that follows the system's light/dark setting (prefers-color-scheme), and the
// intraday chart's time axis in the market's time zone. dashboard.js hands each figure to
// StockCharts.prepare before Plotly.newPlot; a change of the system setting re-colours the
// drawn charts in place (Plotly.relayout), without a reload.
(function () {
  "use strict";
  var dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var THEMES = {
    light: {paper: "#ffffff", plot: "#ffffff", font: "#1d2733", grid: "#e3e8ee", line: "#c5ced8"},
    dark: {paper: "#161b22", plot: "#161b22", font: "#d7dee7", grid: "#2d3640", line: "#46525f"}
  };

  function scheme() { return dark && dark.matches ? "dark" : "light"; }

  // The relayout update (flat "a.b" keys) giving `layout`'s axes and background the theme.
  function themeUpdate(layout, name) {
    var t = THEMES[name], update = {
      "paper_bgcolor": t.paper, "plot_bgcolor": t.plot, "font.color": t.font, "legend.font.color": t.font
    };
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        update[key + ".gridcolor"] = t.grid;
        update[key + ".linecolor"] = t.line;
        update[key + ".zerolinecolor"] = t.line;
      }
    });
    return update;
  }

  function apply(layout, update) {
    Object.keys(update).forEach(function (path) {
      var parts = path.split("."), node = layout;
      for (var i = 0; i < parts.length - 1; i++) { node = node[parts[i]] = node[parts[i]] || {}; }
      node[parts[parts.length - 1]] = update[path];
    });
    return layout;
  }

  function prepare(el, fig) {
    if (el.dataset.times === "market" && window.StockTime) {
      // plotly.js has no time zones: it draws the wall-clock text it is given. Give it the
      // market's wall clock, so the axis reads like the exchange's session (09:30-16:00 in New York).
      fig.data.forEach(function (trace) {
        if (trace.x) trace.x = trace.x.map(function (iso) { return StockTime.marketWallClock(iso); });
      });
      fig.layout.xaxis = fig.layout.xaxis || {};
      if (fig.layout.xaxis.range) fig.layout.xaxis.range = fig.layout.xaxis.range.map(StockTime.marketWallClock);
      fig.layout.xaxis.title = {text: "Market time (" + StockTime.marketZoneName() + ")", standoff: 12};
      fig.layout.xaxis.automargin = true;
    }
    if (el.clientWidth < 600 && fig.layout.showlegend) {
      // A phone: the many-entry legend wraps into rows that would cover the price panel,
      // so it goes under the chart, which grows by the room it takes.
      fig.layout.legend = {orientation: "h", x: 0, xanchor: "left", y: -0.04, yanchor: "top"};
      fig.layout.height = (fig.layout.height || 450) + 150;
      fig.layout.margin = Object.assign({}, fig.layout.margin, {b: 190});
    }
    apply(fig.layout, themeUpdate(fig.layout, scheme()));
    el.dataset.theme = scheme();
    return fig;
  }

  if (dark && dark.addEventListener) {
    dark.addEventListener("change", function () {
      document.querySelectorAll('.chart[data-rendered="true"]').forEach(function (el) {
        Plotly.relayout(el, themeUpdate(el.layout, scheme())).then(function () { el.dataset.theme = scheme(); });
      });
    });
  }
  window.StockCharts = {prepare: prepare, scheme: scheme};
})();
