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
/* Keyboard shortcuts (queue.js, ticket.js) ask this first: never while typing in a field, during IME
   composition (isComposing, keyCode 229, or between compositionstart/compositionend), with a modifier
   key, or while a dialog is open. */
(function () {
  "use strict";
  var composing = false;
  document.addEventListener("compositionstart", function () { composing = true; }, true);
  document.addEventListener("compositionend", function () {
    // The keydown that ends a composition arrives right after compositionend in some browsers.
    window.setTimeout(function () { composing = false; }, 0);
  }, true);
  window.helpdesk = window.helpdesk || {};
  window.helpdesk.shortcutAllowed = function (ev) {
    if (ev.defaultPrevented || ev.isComposing || ev.keyCode === 229 || composing) { return false; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return false; }
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) { return false; }
    if (document.querySelector("dialog[open]")) { return false; }
    return true;
  };
})();

// Copy buttons (issue 16.8): <button data-copy-target="ID"> copies the value of #ID (the one-time API token).
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("[data-copy-target]");
  if (!button) return;
  var id = button.getAttribute("data-copy-target");
  var field = document.getElementById(id);
  var status = document.querySelector('[data-copy-status="' + id + '"]');
  if (!field) return;
  var done = function () { if (status) status.textContent = button.getAttribute("data-copied-text") || "OK"; };
  var fallback = function () { field.focus(); field.select(); try { document.execCommand("copy"); done(); } catch (e) { /* selected: Ctrl+C */ } };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, fallback);
  } else {
    fallback();
  }
});

// Print buttons (issue 16.6): <button data-print> opens the browser's print dialog (print layout in app.css).
document.addEventListener("click", function (event) {
  if (event.target.closest && event.target.closest("[data-print]")) window.print();
});
