// The training-run page: poll the run's state and swap it in, until the run has finished.
(function () {
  "use strict";
  function poll(container) {
    fetch(container.dataset.stateUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (state) {
        container.innerHTML = state.html;
        if (state.finished) {
          var cancel = document.getElementById("cancel-form");
          if (cancel) cancel.remove();
        } else {
          setTimeout(function () { poll(container); }, 1000);
        }
      })
      .catch(function () { setTimeout(function () { poll(container); }, 3000); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("run-state");
    if (container && container.dataset.finished !== "true") poll(container);
  });
})();
