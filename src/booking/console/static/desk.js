// The desk's only script: results as you type, "/" to jump to the search field, and the
// day's forms fetched on demand.
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
  // The day's walk-in and cancel forms come on demand: a link (a[data-form]) opens the day
  // with that one form; with this script the form alone is fetched and put in the link's
  // place, its first field focused. Anything unexpected: follow the link.
  document.addEventListener("click", function (e) {
    var link = e.target && e.target.closest && e.target.closest("a[data-form]");
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey || e.button) { return; }
    e.preventDefault();
    var url = "/desk/day/form" + new URL(link.href).search;
    fetch(url, { headers: { "X-Console": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) { window.location = link.href; return; }
        var holder = document.createElement("div");
        holder.innerHTML = text;
        var form = holder.querySelector("form");
        if (!form) { window.location = link.href; return; }
        link.replaceWith(form);
        var first = form.querySelector("[autofocus]") || form.querySelector("input:not([type=hidden]), select");
        if (first) { first.focus(); }
      }, function () { window.location = link.href; });
  });
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (e.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(tag)) {
      var q = document.getElementById("q");
      if (q) { e.preventDefault(); q.focus(); q.select(); } else { window.location = "/desk"; }
    }
  });
})();
