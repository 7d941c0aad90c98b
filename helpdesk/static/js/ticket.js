/* Ticket page: collision hint. Polls the presence endpoint every 15 s (no inline script: CSP). */
(function () {
  "use strict";
  var root = document.getElementById("ticket");
  if (!root || !window.fetch) { return; }
  var url = root.dataset.presenceUrl;
  var version = root.dataset.version;
  var box = document.getElementById("presence");
  var lastTyped = 0;
  var typing = root.querySelector("[data-presence-typing]");
  if (typing) {
    typing.addEventListener("input", function () {
      var wasIdle = Date.now() - lastTyped > 15000;
      lastTyped = Date.now();
      if (wasIdle) { ping(); }
    });
  }
  function label(o) {
    return o.name + "（" + (o.mode === "replying" ? (box.dataset.replying || "返信を入力中") : (box.dataset.viewing || "閲覧中")) + "）";
  }
  function ping() {
    var mode = Date.now() - lastTyped < 20000 ? "replying" : "viewing";
    fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": window.helpdesk.csrfToken()},
      body: JSON.stringify({mode: mode})
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
      if (!data || !box) { return; }
      var text = "";
      if (data.others.length) {
        text = (box.dataset.prefix || "このチケットを開いている担当者:") + " " + data.others.map(label).join("、");
      }
      if (String(data.version) !== String(version)) {
        text += (text ? " " : "") + (box.dataset.changed || "このチケットは他の担当者が更新しました。保存すると変更内容が表示されます。");
      }
      if (box.textContent !== text) { box.textContent = text; }
    }).catch(function () { /* presence is only a hint */ });
  }
  setInterval(ping, 15000);
})();

/* Ticket page: keyboard shortcuts, macros previewed in place, merge preview. */
(function () {
  "use strict";
  var root = document.getElementById("ticket");
  if (!root) { return; }
  var hd = window.helpdesk || {};
  var body = document.getElementById("body");

  // --- shortcuts: r reply, n note, e escalate, s status, ? list ----------------------------------
  function focusEl(el) { if (el) { el.scrollIntoView({block: "center"}); el.focus(); } }
  function visibility(value) {
    var radio = (body && body.form ? body.form : document).querySelector('input[name="visibility"][value="' + value + '"]');
    if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", {bubbles: true})); }
  }
  var dialog = document.getElementById("shortcuts");
  function openHelp() { if (dialog && dialog.showModal && !dialog.open) { dialog.showModal(); } }
  document.querySelectorAll("[data-shortcuts-open]").forEach(function (b) { b.addEventListener("click", openHelp); });
  document.addEventListener("keydown", function (ev) {
    if (!hd.shortcutAllowed || !hd.shortcutAllowed(ev)) { return; }
    if (ev.key === "r" && body) { ev.preventDefault(); visibility("public"); focusEl(body); }
    else if (ev.key === "n" && body) { ev.preventDefault(); visibility("internal"); focusEl(body); }
    else if (ev.key === "e") { var tier = document.getElementById("tier"); if (tier) { ev.preventDefault(); focusEl(tier); } }
    else if (ev.key === "s") { var st = document.getElementById("status"); if (st) { ev.preventDefault(); focusEl(st); } }
    else if (ev.key === "?") { ev.preventDefault(); openHelp(); }
  });
  if (body && body.form) {
    body.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !ev.isComposing) {
        ev.preventDefault();
        var send = body.form.querySelector('button[name="action"][value="send"]');
        if (body.form.requestSubmit) { body.form.requestSubmit(send); } else if (send) { send.click(); }
      }
    });
  }

  // --- macros: fill the reply box, show what the macro would change, keep or drop each change -----
  var macroSel = document.getElementById("macro");
  var effects = document.getElementById("macro-effects");
  var statusAfter = document.getElementById("status_after");
  var inserted = "";
  if (macroSel && effects && body && window.fetch) {
    var insertButton = document.getElementById("macro-insert");
    if (insertButton) { insertButton.hidden = true; }
    var statusRow = document.getElementById("macro-status-row"), statusBox = document.getElementById("macro-keep-status");
    var catRow = document.getElementById("macro-category-row"), catBox = document.getElementById("macro-keep-category");
    var statusValue = "";
    statusBox.addEventListener("change", function () {
      if (statusAfter) { statusAfter.value = statusBox.checked ? statusValue : ""; }
    });
    macroSel.addEventListener("change", function () {
      var id = macroSel.value;
      if (statusAfter && statusValue && statusAfter.value === statusValue) { statusAfter.value = ""; }
      statusValue = "";
      statusRow.hidden = catRow.hidden = true;
      catBox.checked = false;
      effects.hidden = true;
      if (!id) {
        if (inserted && body.value === inserted) { body.value = ""; }
        inserted = "";
        return;
      }
      fetch(effects.dataset.previewUrl.replace(/\/0\/preview$/, "/" + id + "/preview"),
            {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (data) {
          var current = body.value.trim();
          // Replace what an earlier macro put in; otherwise add below what the agent typed.
          body.value = (!current || body.value === inserted) ? data.body : body.value.replace(/\s+$/, "") + "\n\n" + data.body;
          inserted = body.value;
          body.dispatchEvent(new Event("input", {bubbles: true}));
          data.changes.forEach(function (c) {
            var text = c.label + ": " + c.before + " → " + c.after;
            if (c.field === "status") {
              statusValue = c.value;
              document.getElementById("macro-status-text").textContent = text;
              statusRow.hidden = false;
              statusBox.checked = true;
              if (statusAfter) { statusAfter.value = c.value; }
            } else if (c.field === "category") {
              document.getElementById("macro-category-text").textContent = text;
              catRow.hidden = false;
              catBox.checked = true;
            }
          });
          effects.hidden = data.changes.length === 0;
          body.focus();
        })
        .catch(function () { if (insertButton) { insertButton.hidden = false; } });
    });
  }

  // --- merge: show the target before confirming; warn about another requester / organisation ------
  var mergeForm = document.getElementById("merge-form");
  var target = document.getElementById("target");
  var preview = document.getElementById("merge-preview");
  if (mergeForm && target && preview && window.fetch) {
    var confirmRow = document.getElementById("merge-confirm-row");
    var baseConfirm = mergeForm.dataset.confirm;
    var mds = mergeForm.dataset;
    var seq = 0;
    var show = function () {
      var ref = target.value.trim();
      if (!ref) { preview.hidden = true; return; }
      var mine = ++seq;
      fetch(mds.previewUrl + "?target=" + encodeURIComponent(ref), {credentials: "same-origin",
        headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (mine !== seq) { return; }
          preview.textContent = "";
          preview.hidden = false;
          if (!data.ok) {
            preview.appendChild(document.createElement("p")).textContent = data.error;
            preview.className = "merge-preview merge-preview--error";
            confirmRow.hidden = true;
            return;
          }
          var t = data.target;
          preview.className = "merge-preview" + (data.warnings.length ? " merge-preview--warn" : "");
          preview.appendChild(document.createElement("p")).textContent = t.ref + " " + t.subject;
          var dl = preview.appendChild(document.createElement("ul"));
          [[mds.labelRequester, t.requester], [mds.labelOrganisation, t.organisation], [mds.labelStatus, t.status_label]]
            .forEach(function (pair) { dl.appendChild(document.createElement("li")).textContent = pair[0] + ": " + pair[1]; });
          data.warnings.forEach(function (w) {
            var p = preview.appendChild(document.createElement("p"));
            p.className = "field-error";
            p.textContent = (mds.labelWarning || "注意") + ": " + w;
          });
          confirmRow.hidden = data.warnings.length === 0;
          mergeForm.dataset.confirm = (mds.labelConfirm || "") + "\n" + t.ref + " " + t.subject + "\n" +
            mds.labelRequester + ": " + t.requester + " / " + mds.labelStatus + ": " + t.status_label +
            (data.warnings.length ? "\n" + data.warnings.join("\n") : "") + "\n\n" + baseConfirm;
        })
        .catch(function () { preview.hidden = true; });
    };
    var later = hd.debounce ? hd.debounce(show, 300) : show;
    target.addEventListener("input", later);
    target.addEventListener("change", show);
  }
})();
