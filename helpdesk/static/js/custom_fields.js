// Custom fields on the new-ticket forms: show the fields of the chosen category (and the all-ticket ones).
// Without this script every field is shown; the server checks only those of the chosen category.
(function () {
  "use strict";
  document.querySelectorAll("[data-cf-fields]").forEach(function (box) {
    var form = box.closest("form");
    var select = form && form.querySelector("select[name='category']");
    function update() {
      var code = select ? select.value : "";
      box.querySelectorAll("[data-cf-category]").forEach(function (el) {
        var show = el.getAttribute("data-cf-category") === code;
        el.hidden = !show;
        el.querySelectorAll("input, select, textarea").forEach(function (input) { input.disabled = !show; });
      });
      var any = box.querySelector(".cf-field:not([hidden])");
      box.hidden = !any;
    }
    if (select) { select.addEventListener("change", update); }
    update();
  });
})();
