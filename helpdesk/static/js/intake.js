/* Phone intake: call timer, caller type-ahead, duplicate hint, keyboard submit. */
(function () {
  "use strict";
  var form = document.getElementById("intake-form");
  if (!form) { return; }
  var hd = window.helpdesk || {};
  var debounce = hd.debounce;

  // --- call timer -----------------------------------------------------------------------------
  var startField = document.getElementById("call_started_at");
  var startTime = document.getElementById("call-start-time");
  var elapsed = document.getElementById("call-elapsed");
  // Server clock minus browser clock: the start we send is always on the server's clock.
  var serverNow = parseInt(form.dataset.serverNow, 10);
  var offset = serverNow ? serverNow - Date.now() : 0;
  function showStart() {
    var start = parseInt(startField.value, 10);
    if (!start) { return; }
    var d = new Date(start);
    startTime.textContent = d.toLocaleTimeString("ja-JP", {hour: "2-digit", minute: "2-digit", second: "2-digit"});
    startTime.setAttribute("datetime", d.toISOString());
  }
  function tick() {
    var start = parseInt(startField.value, 10);
    if (!start) { return; }
    var s = Math.max(0, Math.floor((Date.now() + offset - start) / 1000));
    elapsed.textContent = Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }
  showStart();
  tick();
  window.setInterval(tick, 1000);
  var startButton = document.getElementById("call-start");
  if (startButton) {
    startButton.addEventListener("click", function () {
      startField.value = String(Date.now() + offset);
      showStart();
      tick();
      var search = document.getElementById("caller_search");
      if (search) { search.focus(); }
    });
  }

  // --- caller --------------------------------------------------------------------------------
  var callerId = document.getElementById("caller_id");
  var selected = document.getElementById("caller-selected");
  var selectedText = document.getElementById("caller-selected-text");
  var search = document.getElementById("caller_search");
  var newContact = document.getElementById("new-contact");
  var orgCode = document.getElementById("new_org_code");

  function setCaller(contact) {
    callerId.value = contact ? String(contact.id) : "";
    if (contact) {
      var org = [contact.organisation_name, contact.organisation_code].filter(Boolean).join(" / ");
      selectedText.textContent = contact.name + (org ? "（" + org + "）" : "");
      selected.hidden = false;
      if (newContact) { newContact.open = false; }
      // Manual suggestions for the caller's population (suggest.js reads it on each query).
      var desc = document.getElementById("description");
      if (desc && contact.organisation_kind) { desc.setAttribute("data-suggest-role", contact.organisation_kind); }
    } else {
      selectedText.textContent = "";
      selected.hidden = true;
    }
    similarLookup();
  }

  if (search && hd.contactCombobox) {
    hd.contactCombobox(search, document.getElementById("caller-listbox"), {
      url: form.dataset.contactsUrl,
      statusEl: document.getElementById("caller-status"),
      labels: {count: form.dataset.labelCount, none: form.dataset.labelNone, selected: form.dataset.labelSelected,
               review: form.dataset.labelReview, error: form.dataset.labelError},
      onSelect: function (contact) {
        setCaller(contact);
        var subject = document.getElementById("subject");
        if (subject) { subject.focus(); }
      },
      onEdit: function () { if (callerId.value) { setCaller(null); } }
    });
  }
  var clear = document.getElementById("caller-clear");
  if (clear) {
    clear.addEventListener("click", function () {
      setCaller(null);
      search.value = "";
      search.focus();
    });
  }

  // --- duplicate hint -------------------------------------------------------------------------
  var list = document.getElementById("similar-list");
  var empty = document.getElementById("similar-empty");
  var tpl = document.getElementById("similar-item-template");
  var description = document.getElementById("description");
  var subjectField = document.getElementById("subject");
  var seq = 0;

  function renderSimilar(items) {
    list.textContent = "";
    empty.hidden = items.length > 0;
    items.forEach(function (t) {
      var node = tpl.content.firstElementChild.cloneNode(true);
      var link = node.querySelector(".similar-item__link");
      link.href = t.url;
      link.textContent = t.ref;
      node.querySelector(".similar-item__subject").textContent = t.subject;
      node.querySelector(".similar-item__status").textContent = t.status_label;
      var button = node.querySelector(".similar-item__add");
      button.value = t.ref;
      button.setAttribute("aria-label", t.ref + ": " + button.textContent.trim());
      list.appendChild(node);
    });
  }

  var submitting = false;
  form.addEventListener("submit", function () { submitting = true; seq++; });

  function similarNow() {
    if (submitting) { return; }  // the page is leaving: a late answer has nothing to update
    var text = ((subjectField && subjectField.value) || "") + "\n" + ((description && description.value) || "");
    var body = {text: text.trim()};
    if (callerId.value) { body.caller_id = callerId.value; }
    else if (orgCode && orgCode.value.trim()) { body.org_code = orgCode.value.trim(); }
    else { renderSimilar([]); return; }
    if (body.text.length < 2) { renderSimilar([]); return; }
    var mine = ++seq;
    fetch(form.dataset.similarUrl, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": hd.csrfToken ? hd.csrfToken() : ""},
      body: JSON.stringify(body)})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) { if (mine === seq) { renderSimilar(data.tickets || []); } })
      .catch(function () { /* a hint only: the form works without it */ });
  }
  var similarLookup = debounce ? debounce(similarNow, 500) : similarNow;
  [description, subjectField, orgCode].forEach(function (el) {
    if (el) { el.addEventListener("input", similarLookup); }
  });

  // --- keyboard submit ------------------------------------------------------------------------
  var submit = document.getElementById("intake-submit");
  function send() {
    if (form.requestSubmit) { form.requestSubmit(submit); } else { submit.click(); }
  }
  var last = document.getElementById("resolved_on_call");
  if (last) {
    last.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); send(); }
    });
  }
  form.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !ev.isComposing) { ev.preventDefault(); send(); }
  });
})();

/* Phone intake: Enter in a one-line field (件名, 発信者 …) never submits the form — only Enter on the last
   field (一次解決) or Ctrl+Enter does; Enter that confirms an IME conversion is left alone. */
(function () {
  "use strict";
  var form = document.getElementById("intake-form");
  if (!form) { return; }
  form.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter" || ev.isComposing || ev.keyCode === 229 || ev.ctrlKey || ev.metaKey) { return; }
    var t = ev.target;
    if (t.tagName === "INPUT" && !/^(checkbox|radio|submit|button)$/.test(t.type)) { ev.preventDefault(); }
  });
})();
