// The draft editor's live lint: after a pause in typing, the form is posted to the lint
// endpoint and its answer replaces the lint region (aria-live). Without JavaScript the same
// problems show when the draft is saved. "Line N" links put the caret on that line.
(function () {
  "use strict";
  var form = document.getElementById("draft-form");
  var region = document.getElementById("lint");
  var rules = document.getElementById("rules");
  if (!form || !region || !rules || !window.fetch || !window.FormData) return;
  var timer = null, sent = 0;

  function mark() {
    var list = region.querySelector("[data-fields]");
    var bad = list ? list.getAttribute("data-fields").split(" ") : [];
    form.querySelectorAll("[data-field]").forEach(function (el) {
      var field = el.getAttribute("data-field");
      if (field === "reason") return;
      if (bad.indexOf(field) >= 0 || (field === "rules" && bad.indexOf("document") >= 0)) {
        el.setAttribute("aria-invalid", "true");
      } else {
        el.removeAttribute("aria-invalid");
      }
    });
  }

  function lint() {
    var mine = ++sent;
    fetch(form.getAttribute("data-lint-url"), {method: "POST", body: new FormData(form), credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { if (mine === sent) { region.innerHTML = html; mark(); } })
      .catch(function () { /* the save still checks everything */ });
  }

  form.addEventListener("input", function (event) {
    if (event.target.name === "reason") return;
    clearTimeout(timer);
    timer = setTimeout(lint, 400);
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-line]");
    if (!link) return;
    event.preventDefault();
    var line = parseInt(link.getAttribute("data-line"), 10), at = 0;
    for (var n = 1; n < line; n++) {
      var next = rules.value.indexOf("\n", at);
      if (next < 0) break;
      at = next + 1;
    }
    var end = rules.value.indexOf("\n", at);
    rules.focus();
    rules.setSelectionRange(at, end < 0 ? rules.value.length : end);
    var lineHeight = rules.scrollHeight / Math.max(1, rules.value.split("\n").length);
    rules.scrollTop = Math.max(0, (line - 3) * lineHeight);
  });
})();
