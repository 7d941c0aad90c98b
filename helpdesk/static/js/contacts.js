/* Caller type-ahead: an ARIA 1.2 combobox (input + listbox) fed by /agent/contacts?q=.
   Arrow keys move through the options, Enter selects, Escape closes; results are announced. */
(function () {
  "use strict";

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments, self = this;
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { fn.apply(self, args); }, ms);
    };
  }

  function text(tag, cls, value) {
    var el = document.createElement(tag);
    if (cls) { el.className = cls; }
    el.textContent = value;
    return el;
  }

  function contactCombobox(input, listbox, options) {
    var results = [], active = -1, seq = 0, lastQuery = null;
    var status = options.statusEl || null;
    var labels = options.labels || {};

    function announce(message) { if (status) { status.textContent = message; } }

    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function isOpen() { return !listbox.hidden && results.length > 0; }

    function setActive(index) {
      var items = listbox.querySelectorAll("[role=option]");
      if (!items.length) { return; }
      active = (index + items.length) % items.length;
      for (var i = 0; i < items.length; i++) {
        items[i].setAttribute("aria-selected", i === active ? "true" : "false");
        items[i].classList.toggle("is-active", i === active);
      }
      input.setAttribute("aria-activedescendant", items[active].id);
      items[active].scrollIntoView({block: "nearest"});
    }

    function choose(index) {
      var contact = results[index];
      if (!contact) { return; }
      close();
      input.value = contact.name;
      announce((labels.selected || "選択しました: ") + contact.name);
      if (options.onSelect) { options.onSelect(contact); }
    }

    function render(list) {
      results = list;
      listbox.textContent = "";
      if (!list.length) {
        close();
        announce(labels.none || "該当する連絡先はありません。");
        return;
      }
      list.forEach(function (c, i) {
        var li = document.createElement("li");
        li.id = listbox.id + "-opt-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.className = "combobox__option";
        li.appendChild(text("span", "combobox__name", c.name));
        var org = [c.organisation_name, c.organisation_code].filter(Boolean).join(" / ");
        if (org) { li.appendChild(text("span", "combobox__org", org)); }
        var reach = [c.email, c.phone].filter(Boolean).join(" ・ ");
        if (reach) { li.appendChild(text("span", "combobox__reach", reach)); }
        if (c.needs_review) { li.appendChild(text("span", "badge", labels.review || "要確認")); }
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); });
        li.addEventListener("click", function () { choose(i); });
        listbox.appendChild(li);
      });
      listbox.hidden = false;
      input.setAttribute("aria-expanded", "true");
      active = -1;
      announce(list.length + (labels.count || " 件見つかりました。↓↑ で選んで Enter。"));
    }

    var lookup = debounce(function () {
      var q = input.value.trim();
      if (q === lastQuery) { return; }
      lastQuery = q;
      if (!q) { render([]); close(); announce(""); return; }
      var mine = ++seq;
      fetch(options.url + "?q=" + encodeURIComponent(q), {credentials: "same-origin",
        headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (data) { if (mine === seq) { render(data.results || []); } })
        .catch(function () { if (mine === seq) { close(); announce(labels.error || "検索できませんでした。"); } });
    }, options.delay || 200);

    input.addEventListener("input", function () {
      if (options.onEdit) { options.onEdit(); }
      lookup();
    });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowDown") {
        ev.preventDefault();
        if (!isOpen() && results.length) { listbox.hidden = false; input.setAttribute("aria-expanded", "true"); }
        setActive(active + 1);
      } else if (ev.key === "ArrowUp") {
        ev.preventDefault();
        if (isOpen()) { setActive(active - 1); }
      } else if (ev.key === "Enter") {
        // Enter in the search box selects; it never submits the whole form.
        if (ev.isComposing) { return; }
        ev.preventDefault();
        if (isOpen()) { choose(active >= 0 ? active : 0); }
      } else if (ev.key === "Escape") {
        if (isOpen()) { ev.preventDefault(); close(); }
      } else if (ev.key === "Tab") {
        close();
      }
    });
    input.addEventListener("blur", function () { window.setTimeout(close, 150); });
    return {close: close, refresh: function () { lastQuery = null; lookup(); }};
  }

  window.helpdesk = window.helpdesk || {};
  window.helpdesk.contactCombobox = contactCombobox;
  window.helpdesk.debounce = debounce;
})();
