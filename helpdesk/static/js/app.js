/* Small progressive enhancements shared by every page (no inline scripts: CSP). */
(function () {
  "use strict";
  // Confirm destructive actions: <form data-confirm="...">
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      ev.preventDefault();
      return;
    }
    // Prevent double submission by disabling the buttons once (the server also refuses duplicates).
    if (form.dataset && form.dataset.once !== undefined) {
      if (form.dataset.submitted) { ev.preventDefault(); return; }
      form.dataset.submitted = "1";
    }
  });
  // Auto-submit selects marked data-autosubmit (filters); a submit button remains for keyboard users.
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el.dataset && el.dataset.autosubmit !== undefined && el.form) { el.form.submit(); }
  });
  window.helpdesk = window.helpdesk || {};
  window.helpdesk.csrfToken = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  };
})();
