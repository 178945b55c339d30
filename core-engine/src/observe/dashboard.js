// Refreshes the engine page: fetches the server-rendered panel every second and swaps it in.
(function () {
  "use strict";
  var panel = document.getElementById("panel");
  var status = document.getElementById("status");
  var updates = 0;
  function show(text, kind) {
    status.textContent = text;
    status.className = kind;
  }
  function tick() {
    fetch("/_shardline/panel", { cache: "no-store" })
      .then(function (answer) {
        if (!answer.ok) {
          throw new Error("HTTP " + answer.status);
        }
        return answer.text();
      })
      .then(function (html) {
        panel.innerHTML = html;
        updates += 1;
        document.body.setAttribute("data-updates", String(updates));
        show("Live: refreshed every second, last at " + new Date().toLocaleTimeString() +
          " (" + updates + (updates === 1 ? " update)" : " updates)"), "live");
      })
      .catch(function (error) {
        show("Engine unreachable (" + error.message + "); retrying every second.", "down");
      })
      .then(function () {
        setTimeout(tick, 1000);
      });
  }
  tick();
})();
