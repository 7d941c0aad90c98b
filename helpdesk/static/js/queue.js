/* Agent queue: filter bar, bulk bar, SLA countdown, keyboard shortcuts, live updates (no inline script: CSP).
   The page works without it: filters and bulk panel show, rows are plain links. */
(function () {
  "use strict";
  var form = document.getElementById("bulk-form");
  if (!form) { return; }
  var hd = window.helpdesk || {};
  var ds = form.dataset;

  // --- filter bar: the panel folds away; open/closed is remembered in this browser ----------------
  var panel = document.getElementById("filter-panel");
  var toggle = document.getElementById("filters-toggle");
  if (panel && toggle) {
    var key = panel.dataset.storageKey;
    var hasErrors = !!document.querySelector("#queue-filters .flash--error");
    var stored = null;
    try { stored = window.localStorage.getItem(key); } catch (e) { stored = null; }
    var setOpen = function (open, remember) {
      panel.hidden = !open;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      if (remember) { try { window.localStorage.setItem(key, open ? "open" : "closed"); } catch (e) { /* private mode */ } }
    };
    setOpen(hasErrors || stored === "open", false);
    toggle.addEventListener("click", function () { setOpen(panel.hidden, true); });
  }

  // --- selection and the bulk bar -----------------------------------------------------------------
  var bar = document.getElementById("bulk-bar");
  var countEl = document.getElementById("bulk-count");
  var actionSel = document.getElementById("action");
  function boxes() { return form.querySelectorAll('input[name="ids"]'); }
  function selected() { return form.querySelectorAll('input[name="ids"]:checked'); }
  var all = document.createElement("input");
  all.type = "checkbox";
  all.id = "select-all";
  all.setAttribute("aria-label", ds.selectAll || "すべて選択");
  var head = form.querySelector("thead th");
  if (head) { head.appendChild(all); }
  function showPicker() {
    var action = actionSel ? actionSel.value : "";
    form.querySelectorAll(".bulk-value").forEach(function (el) {
      var on = el.dataset.action === action;
      el.hidden = !on;
      el.querySelectorAll("select, input").forEach(function (input) { input.disabled = !on; });
    });
  }
  function updateBar() {
    var n = selected().length;
    if (bar) { bar.hidden = n === 0; }
    if (countEl) { countEl.textContent = n ? (ds.labelSelected || "{n} 件選択中").replace("{n}", n) : ""; }
    var total = boxes().length;
    all.checked = total > 0 && n === total;
    all.indeterminate = n > 0 && n < total;
    form.querySelectorAll("tbody tr").forEach(function (tr) {
      var box = tr.querySelector('input[name="ids"]');
      tr.classList.toggle("is-selected", !!(box && box.checked));
    });
  }
  all.addEventListener("change", function () {
    boxes().forEach(function (box) { box.checked = all.checked; });
    updateBar();
  });
  form.addEventListener("change", function (ev) {
    if (ev.target.name === "ids") { updateBar(); }
    if (ev.target === actionSel) { showPicker(); }
  });
  var clear = document.getElementById("bulk-clear");
  if (clear) { clear.addEventListener("click", function () { boxes().forEach(function (b) { b.checked = false; }); updateBar(); }); }
  showPicker();
  updateBar();

  // --- SLA countdown: words as well as colour, recounted every 30 s -------------------------------
  var AT_RISK = 3600;
  function span(seconds) {
    var m = Math.floor(Math.max(0, seconds) / 60), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60);
    m = m % 60;
    // Whole phrases from the template (data-fmt-*, translated like the server's words), so the order
    // of number and unit follows the language: 「2日3時間」 / "2 d 3 h".
    if (d) { return fmt(ds.fmtDays || "{d}日{h}時間", {d: d, h: h}); }
    if (h) { return fmt(ds.fmtHours || "{h}時間{m}分", {h: h, m: m}); }
    return fmt(ds.fmtMinutes || "{m}分", {m: m});
  }
  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, key) { return key in values ? values[key] : all; });
  }
  function countdown() {
    var now = Date.now();
    form.querySelectorAll("td.sla[data-due]").forEach(function (td) {
      var left = Math.floor((Date.parse(td.dataset.due) - now) / 1000);
      var state = "ok", text;
      if (left < 0 || td.dataset.state === "breached") {
        state = "breached";
        text = left < 0 ? fmt(ds.fmtOver || "超過 {t}", {t: span(-left)}) : (ds.labelDueOver || "超過");
      } else if (left <= AT_RISK || td.dataset.state === "at_risk") {
        state = "at_risk";
        text = fmt(ds.fmtAtRisk || "残り {t}（期限間近）", {t: span(left)});
      } else {
        text = fmt(ds.fmtLeft || "残り {t}", {t: span(left)});
      }
      td.className = "sla sla--" + state;
      var el = td.querySelector(".sla-text");
      if (el && el.textContent !== text) { el.textContent = text; }
    });
  }
  countdown();
  window.setInterval(countdown, 30000);

  // --- keyboard shortcuts -------------------------------------------------------------------------
  var dialog = document.getElementById("shortcuts");
  var current = -1;
  function rows() { return Array.prototype.slice.call(form.querySelectorAll("tbody tr[data-ticket-id]")); }
  function setCurrent(index, focus) {
    var list = rows();
    if (!list.length) { return; }
    current = Math.max(0, Math.min(index, list.length - 1));
    list.forEach(function (tr, i) { tr.classList.toggle("is-current", i === current); });
    var link = list[current].querySelector("td.ref a");
    if (focus !== false && link) { link.focus(); }
    list[current].scrollIntoView({block: "nearest"});
  }
  function currentRow() { var list = rows(); return current >= 0 ? list[current] : null; }
  function assignToMe() {
    var ids = Array.prototype.map.call(selected(), function (b) { return b.value; });
    if (!ids.length && currentRow()) { ids = [currentRow().dataset.ticketId]; }
    if (!ids.length) { return; }
    boxes().forEach(function (b) { b.checked = ids.indexOf(b.value) >= 0; });
    if (actionSel) { actionSel.value = "assign"; }
    showPicker();
    var who = document.getElementById("bulk-assign");
    if (who) { who.value = "me"; }
    form.submit();
  }
  function openHelp() { if (dialog && dialog.showModal && !dialog.open) { dialog.showModal(); } }
  document.querySelectorAll("[data-shortcuts-open]").forEach(function (b) { b.addEventListener("click", openHelp); });
  document.addEventListener("focusin", function (ev) {
    var tr = ev.target.closest && ev.target.closest("tbody tr[data-ticket-id]");
    if (tr) { current = rows().indexOf(tr); rows().forEach(function (r) { r.classList.toggle("is-current", r === tr); }); }
  });
  document.addEventListener("keydown", function (ev) {
    if (!hd.shortcutAllowed || !hd.shortcutAllowed(ev)) { return; }
    var key = ev.key;
    if (key === "j") { ev.preventDefault(); setCurrent(current + 1); }
    else if (key === "k") { ev.preventDefault(); setCurrent(current < 0 ? 0 : current - 1); }
    else if (key === "Enter" && currentRow() && document.activeElement === document.body) {
      ev.preventDefault(); window.location.href = currentRow().querySelector("td.ref a").href;
    }
    else if (key === "x" && currentRow()) {
      ev.preventDefault();
      var box = currentRow().querySelector('input[name="ids"]');
      box.checked = !box.checked;
      updateBar();
    }
    else if (key === "a") { ev.preventDefault(); assignToMe(); }
    else if (key === "?") { ev.preventDefault(); openHelp(); }
    else if (key === "/") { var q = document.getElementById("f-q"); if (q) { ev.preventDefault(); q.focus(); } }
  });

  // --- live updates: server-sent events (Redis) or polling; unread count in the tab title ---------
  var tbody = document.getElementById("queue-rows");
  var status = document.getElementById("live-status");
  var baseTitle = document.title;
  var lastEvent = parseInt(ds.lastEvent, 10) || 0;
  function unreadCount() { return form.querySelectorAll("tbody tr.unread").length; }
  function updateTitle() {
    var n = unreadCount();
    document.title = (n ? "(" + n + ") " : "") + baseTitle;
  }
  updateTitle();
  var refreshing = false, again = false;
  function refreshRows() {
    if (!ds.rowsUrl || !tbody) { return; }
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(ds.rowsUrl, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        var checked = Array.prototype.map.call(selected(), function (b) { return b.value; });
        var before = {};
        rows().forEach(function (tr) { before[tr.dataset.ticketId] = true; });
        var cur = currentRow() ? currentRow().dataset.ticketId : null;
        var hadFocus = document.activeElement && tbody.contains(document.activeElement);
        tbody.innerHTML = html;
        rows().forEach(function (tr, i) {
          var box = tr.querySelector('input[name="ids"]');
          if (box && checked.indexOf(box.value) >= 0) { box.checked = true; }
          if (!before[tr.dataset.ticketId]) { tr.classList.add("is-fresh"); }
          if (tr.dataset.ticketId === cur) { current = i; tr.classList.add("is-current"); }
        });
        if (cur && hadFocus && currentRow()) { currentRow().querySelector("td.ref a").focus(); }
        updateBar();
        countdown();
        updateTitle();
        if (status) { status.textContent = ds.labelUpdated || "キューを更新しました"; }
      })
      .catch(function () { /* the next change tries again */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; window.setTimeout(refreshRows, 500); }
      });
  }
  var pending = null;
  function changed(item) {
    if (item && item.id) { lastEvent = Math.max(lastEvent, item.id); }
    if (pending) { return; }
    pending = window.setTimeout(function () { pending = null; refreshRows(); }, 400);
  }
  var pollTimer = null;
  function poll() {
    fetch(ds.changesUrl + "?after=" + lastEvent, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.changes && data.changes.length) { data.changes.forEach(changed); }
        if (data && data.last) { lastEvent = Math.max(lastEvent, data.last); }
      })
      .catch(function () { /* offline for a moment */ });
  }
  function startPolling() {
    if (pollTimer || !ds.changesUrl) { return; }
    pollTimer = window.setInterval(poll, parseInt(ds.pollMs || "10000", 10));
  }
  if (!ds.rowsUrl) { return; }  // a later page of the list: no live refresh
  if (ds.live === "1" && window.EventSource && ds.streamUrl) {
    var source = new EventSource(ds.streamUrl + "?after=" + lastEvent);
    source.addEventListener("ticket", function (ev) {
      try { changed(JSON.parse(ev.data)); } catch (e) { changed(null); }
    });
    source.addEventListener("fallback", function () { source.close(); startPolling(); });
  } else {
    startPolling();
  }
  window.helpdesk = hd;
  hd.queueRefresh = refreshRows;
})();
