// The desk's only script: results as you type, and "/" to jump to the search field.
// Everything works without it (plain links and forms); it only saves key presses.
(function () {
  "use strict";
  var field = document.querySelector("input[data-live]");
  var results = document.getElementById("results");
  if (field && results) {
    var timer = null, asked = 0;
    field.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++asked;
        var url = field.getAttribute("data-live") + "?q=" + encodeURIComponent(field.value);
        fetch(url, { headers: { "X-Console": "1" }, credentials: "same-origin" })
          .then(function (r) {
            if (r.status === 401) { window.location = "/desk/sign-in?next=/desk"; return null; }
            return r.ok ? r.text() : null;
          })
          .then(function (text) {
            if (text !== null && mine === asked) { results.innerHTML = text; }
          });
      }, 120);
    });
    field.addEventListener("keydown", function (e) {
      if (e.key === "Enter") {
        // A card already shown (an exact reference): Enter goes to its earliest time, so
        // a second Enter moves the booking. Otherwise Enter opens the first result.
        var choice = results.querySelector("#alternatives button");
        var first = results.querySelector("a");
        if (choice && field.value) { e.preventDefault(); choice.focus(); }
        else if (first && field.value) { e.preventDefault(); first.click(); }
      } else if (e.key === "ArrowDown") {
        var link = results.querySelector("a");
        if (link) { e.preventDefault(); link.focus(); }
      }
    });
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (e.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(tag)) {
      var q = document.getElementById("q");
      if (q) { e.preventDefault(); q.focus(); q.select(); } else { window.location = "/desk"; }
    }
  });
})();
