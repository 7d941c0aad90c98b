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
