// Ticket page: the "link to a problem" form posts to the chosen problem's link URL.
(function () {
  "use strict";
  var form = document.getElementById("link-problem-form");
  if (!form) { return; }
  var select = form.querySelector("#problem-choice");
  function update() {
    var template = select.getAttribute("data-link-url") || "";
    form.setAttribute("action", template.replace("/problems/0/", "/problems/" + encodeURIComponent(select.value) + "/"));
  }
  select.addEventListener("change", update);
  update();
})();
