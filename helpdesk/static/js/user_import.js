/* User import progress (issue 16.7): poll the job's status and move the <progress> bar; reload when it ends. */
(function () {
  "use strict";
  var box = document.getElementById("import-job");
  if (!box) { return; }
  var bar = document.getElementById("import-progress");
  var percent = document.getElementById("import-percent");
  var url = box.getAttribute("data-status-url");
  var status = box.getAttribute("data-status");
  if (status !== "queued" && status !== "running") { return; }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}, cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) { window.setTimeout(poll, 3000); return; }
        bar.value = body.percent;
        bar.textContent = body.percent + " %";
        percent.textContent = body.percent + " %";
        if (body.status === "done" || body.status === "failed") {
          window.location.reload();  // the page renders the summary
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
