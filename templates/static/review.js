// discovery review set walk: keys 1-9 press the matching tag button (data-key) of the item's form;
// j / k follow the Next / Previous links (a[data-walk]), which work without this file too.
// typing() is app.js's (window.discovery.typing): keys typed into a field are left alone.
(function () {
  "use strict";

  var shared = window.discovery || {};
  var typing = shared.typing;
  if (!typing) return;  // app.js did not load: the buttons and links still work

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "j" || event.key === "k") {
      var link = document.querySelector("a[data-walk='" + (event.key === "j" ? "next" : "prev") + "']");
      if (!link) return;
      event.preventDefault();
      window.location.assign(link.href);
      return;
    }
    if (!/^[1-9]$/.test(event.key)) return;
    var button = document.querySelector(".review-buttons button[data-key='" + event.key + "']");
    if (!button) return;
    event.preventDefault();
    button.click();
  });
})();
