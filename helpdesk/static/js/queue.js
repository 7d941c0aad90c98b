/* Agent queue: a "select all" checkbox for bulk actions (the table works without it). */
(function () {
  "use strict";
  var form = document.getElementById("bulk-form");
  if (!form) { return; }
  var head = form.querySelector("thead th");
  if (!head) { return; }
  var all = document.createElement("input");
  all.type = "checkbox";
  all.id = "select-all";
  all.setAttribute("aria-label", form.dataset.selectAll || "すべて選択");
  head.appendChild(all);
  all.addEventListener("change", function () {
    form.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = all.checked; });
  });
})();
