/* Portal: list the chosen files with their sizes and warn early about too large / too many files
   (the server checks again, by content). */
(function () {
  "use strict";
  function size(n) {
    if (n >= 1048576) { return (n / 1048576).toFixed(1) + " MB"; }
    if (n >= 1024) { return Math.ceil(n / 1024) + " KB"; }
    return n + " B";
  }
  var inputs = document.querySelectorAll("input[type=file][data-max-bytes]");
  Array.prototype.forEach.call(inputs, function (input) {
    var list = document.querySelector('[data-file-list-for="' + input.id + '"]');
    var max = parseInt(input.dataset.maxBytes, 10) || 0;
    var maxFiles = parseInt(input.dataset.maxFiles, 10) || 0;
    input.addEventListener("change", function () {
      if (!list) { return; }
      list.textContent = "";
      var problems = [];
      Array.prototype.forEach.call(input.files, function (f) {
        var li = document.createElement("li");
        li.textContent = f.name + "（" + size(f.size) + "）";
        if (max && f.size > max) {
          li.className = "field-error";
          li.textContent += " — " + (input.dataset.labelTooBig || "too big");
          problems.push(f.name);
        }
        list.appendChild(li);
      });
      if (maxFiles && input.files.length > maxFiles) {
        var li = document.createElement("li");
        li.className = "field-error";
        li.textContent = input.dataset.labelTooMany || "too many files";
        list.appendChild(li);
        problems.push("count");
      }
      input.setCustomValidity(problems.length ? (input.dataset.labelCheck || "!") : "");
    });
  });
})();
