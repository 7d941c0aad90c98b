/* Manual suggestions while typing (debounced), "insert into reply", ticket linking, deflection tokens.
 *
 * Mark a textarea with data-suggest-target="#list-id" (+ optional data-suggest-role, data-suggest-url,
 * data-suggest-deflection). If the page has a textarea marked data-suggest-insert, each suggestion gets an
 * "insert into reply" button; if an element carries data-link-url (+ data-ticket-ref), the click also POSTs
 * the slug there with the CSRF token from <meta name="csrf-token">. No inline script: CSP-friendly.
 */
(function () {
  "use strict";
  var DEBOUNCE_MS = 250;
  var MIN_CHARS = 2;
  var en = (document.documentElement.lang || "ja").indexOf("en") === 0;
  var T = en ? {
    insert: "Insert into reply", inserted: "Inserted into the reply.", linked: "Linked to the ticket.",
    linkFailed: "Inserted, but linking to the ticket failed: ", none: "No matching article.",
    error: "Suggestions are unavailable right now.", open: "(opens in a new tab)", insertFor: "Insert into reply: "
  } : {
    insert: "返信に挿入", inserted: "返信欄に挿入しました。", linked: "チケットに紐付けました。",
    linkFailed: "挿入しましたが、チケットへの紐付けに失敗しました: ", none: "該当する記事はありません。",
    error: "現在、候補を表示できません。", open: "（新しいタブで開きます）", insertFor: "返信に挿入: "
  };

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function newToken() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function statusRegion(list) {
    var id = list.id + "-status";
    var region = document.getElementById(id);
    if (!region) {
      region = document.createElement("p");
      region.id = id;
      region.className = "suggest-status";
      region.setAttribute("role", "status");
      region.setAttribute("aria-live", "polite");
      list.parentNode.insertBefore(region, list.nextSibling);
    }
    return region;
  }

  function insertText(textarea, text) {
    var start = typeof textarea.selectionStart === "number" ? textarea.selectionStart : textarea.value.length;
    var end = typeof textarea.selectionEnd === "number" ? textarea.selectionEnd : start;
    var before = textarea.value.slice(0, start);
    var sep = before && !/\n$/.test(before) ? "\n" : "";
    textarea.value = before + sep + text + textarea.value.slice(end);
    var pos = (before + sep + text).length;
    textarea.focus();
    try { textarea.setSelectionRange(pos, pos); } catch (e) { /* not focusable yet */ }
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function linkArticle(url, ticketRef, slug, logToken) {
    var body = new FormData();
    if (logToken) { body.append("lt", logToken); }
    body.append("csrf_token", csrfToken());
    body.append("ticket_ref", ticketRef || "");
    body.append("slug", slug);
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "fetch", "X-CSRFToken": csrfToken() }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok || !data.ok) {
          var errs = data.errors || {};
          var msg = Object.keys(errs).map(function (k) { return errs[k].join(" "); }).join(" ") || String(r.status);
          throw new Error(msg);
        }
        return data;
      });
    });
  }

  function setup(source) {
    var list = document.querySelector(source.getAttribute("data-suggest-target"));
    if (!list) { return; }
    var endpoint = source.getAttribute("data-suggest-url") || "/manuals/suggest";
    var deflection = source.hasAttribute("data-suggest-deflection");
    var token = deflection ? newToken() : null;
    // One token per page for the search log (content gaps): the latest text, what was opened, a ticket after.
    var logToken = token || newToken();
    var timer = null, controller = null, seq = 0, lastQuery = null;

    function render(results) {
      list.textContent = "";
      var insertTarget = document.querySelector("[data-suggest-insert]");
      var linkHolder = document.querySelector("[data-link-url]");
      if (!results.length) {
        var empty = document.createElement("li");
        empty.className = "suggestion suggestion--empty muted";
        empty.textContent = T.none;
        list.appendChild(empty);
        return;
      }
      results.forEach(function (hit) {
        var li = document.createElement("li");
        li.className = "suggestion";
        li.setAttribute("data-slug", hit.slug);
        var a = document.createElement("a");
        // Opened in this browser: the site-relative path (the absolute BASE_URL link is for replies and mail).
        var href = new URL(hit.path || hit.url, window.location.href);
        href.searchParams.set("src", "suggest");
        if (token) { href.searchParams.set("sg", token); }
        href.searchParams.set("lt", logToken);
        a.href = href.toString();
        a.className = "suggestion__title";
        a.textContent = hit.title;
        if (deflection) {
          a.target = "_blank";
          a.rel = "noopener";
          var hint = document.createElement("span");
          hint.className = "visually-hidden";
          hint.textContent = T.open;
          a.appendChild(hint);
        }
        li.appendChild(a);
        if (hit.excerpt) {
          var p = document.createElement("p");
          p.className = "suggestion__excerpt";
          p.textContent = hit.excerpt;
          li.appendChild(p);
        }
        if (insertTarget) {
          var btn = document.createElement("button");
          btn.type = "button";
          btn.className = "secondary suggestion__insert";
          btn.textContent = T.insert;
          btn.setAttribute("aria-label", T.insertFor + hit.title);
          btn.addEventListener("click", function () {
            insertText(insertTarget, hit.title + "\n" + hit.url + (hit.excerpt ? "\n" + hit.excerpt : "") + "\n");
            var status = statusRegion(list);
            status.textContent = T.inserted;
            var linkUrl = linkHolder ? linkHolder.getAttribute("data-link-url") : "";
            if (linkUrl) {
              var ref = linkHolder.getAttribute("data-ticket-ref") ||
                (document.querySelector("[data-ticket-ref]") || { getAttribute: function () { return ""; } })
                  .getAttribute("data-ticket-ref");
              linkArticle(linkUrl, ref, hit.slug, logToken).then(function () {
                status.textContent = T.inserted + " " + T.linked;
                li.classList.add("suggestion--linked");
              }).catch(function (err) { status.textContent = T.linkFailed + err.message; });
            }
          });
          li.appendChild(btn);
        }
        list.appendChild(li);
      });
    }

    function query() {
      var text = source.value.trim();
      if (text.length < MIN_CHARS) { list.textContent = ""; lastQuery = null; return; }
      if (text === lastQuery) { return; }
      lastQuery = text;
      var url = new URL(endpoint, window.location.href);
      url.searchParams.set("q", text.slice(-2000));
      url.searchParams.set("lt", logToken);
      var role = source.getAttribute("data-suggest-role");
      if (role) { url.searchParams.set("role", role); }
      if (controller) { controller.abort(); }
      controller = window.AbortController ? new AbortController() : null;
      var mine = ++seq;
      list.setAttribute("aria-busy", "true");
      fetch(url.toString(), { credentials: "same-origin", headers: { "Accept": "application/json" },
                              signal: controller ? controller.signal : undefined })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (data) { if (mine === seq) { render(data.results || []); } })
        .catch(function (err) {
          if (err && err.name === "AbortError") { return; }
          if (mine === seq) { statusRegion(list).textContent = T.error; lastQuery = null; }
        })
        .then(function () { if (mine === seq) { list.removeAttribute("aria-busy"); } });
    }

    source.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(query, DEBOUNCE_MS);
    });
    if (source.value.trim().length >= MIN_CHARS) { query(); }

    if (deflection && source.form) {
      source.form.addEventListener("submit", function () {
        var body = new FormData();
        body.append("csrf_token", csrfToken());
        body.append("token", token);
        var url = source.getAttribute("data-deflection-url") || "/manuals/deflection/submitted";
        if (navigator.sendBeacon) { navigator.sendBeacon(url, body); }
        else { fetch(url, { method: "POST", body: body, credentials: "same-origin", keepalive: true }); }
      });
    }
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-suggest-target]"), setup);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
