// "Your tickers" on /: suggestions from Yahoo's search (/symbols/suggest) while a ticker is typed,
// offered through the input's <datalist>. Without Yahoo the list simply stays empty.
(function () {
  "use strict";
  var input = document.getElementById("symbol");
  var list = document.getElementById("symbol-suggestions");
  if (!input || !list) return;
  input.setAttribute("list", list.id);
  var timer = null, asked = "";

  function fill(suggestions) {
    list.replaceChildren();
    suggestions.forEach(function (s) {
      var option = document.createElement("option");
      option.value = s.symbol;
      option.label = s.name + (s.exchange ? " (" + s.exchange + ")" : "");
      list.appendChild(option);
    });
    list.dataset.for = asked;
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    var q = input.value.trim();
    if (!q || q === asked) return;
    timer = setTimeout(function () {
      asked = q;
      fetch("/symbols/suggest?q=" + encodeURIComponent(q), {headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : {suggestions: []}; })
        .then(function (body) { if (asked === q) fill(body.suggestions || []); })
        .catch(function () { /* no suggestions; the form still works */ });
    }, 300);
  });
})();
