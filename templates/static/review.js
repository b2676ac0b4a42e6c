// discovery review set walk: keys 1-9 press the matching tag button (data-key) of the item's form.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (!/^[1-9]$/.test(event.key)) return;
    var button = document.querySelector(".review-buttons button[data-key='" + event.key + "']");
    if (!button) return;
    event.preventDefault();
    button.click();
  });
})();
