// Impact computation in progress: poll its progress, update the figures, reload when done.
(function () {
  var box = document.getElementById("impact-progress");
  if (!box) return;
  var url = box.getAttribute("data-poll");
  function tick() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        if (p.status === "done" || p.status === "failed" || !p.status) { window.location.reload(); return; }
        document.getElementById("impact-done").textContent = p.done.toLocaleString("en");
        document.getElementById("impact-percent").textContent = p.percent;
        document.getElementById("impact-bar").value = p.done;
        setTimeout(tick, 1000);
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();
