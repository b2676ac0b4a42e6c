// discovery: small enhancements only; every page works without this file.
//   /      focus the search box
//   j / k  next / previous hit (a review set's walk page: next / previous item, see review.js)
//   o      open the conversation at the current hit
// and "Load earlier/later messages" in a transcript splice the next page in place.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  // Shared with review.js (loaded after this file: both are deferred, base.html puts this one first).
  window.discovery = window.discovery || {};
  window.discovery.typing = typing;

  function hits() {
    return Array.prototype.slice.call(document.querySelectorAll(".msg.hit[id^='hit-']"));
  }

  var current = -1;

  function select(index) {
    var list = hits();
    if (!list.length) return;
    index = Math.max(0, Math.min(list.length - 1, index));
    if (current >= 0 && list[current]) list[current].classList.remove("current");
    current = index;
    var hit = list[current];
    hit.classList.add("current");
    hit.focus({ preventScroll: true });
    hit.scrollIntoView({ block: "center" });
  }

  function currentFromFocus() {
    var list = hits();
    var active = document.activeElement;
    for (var i = 0; i < list.length; i++) {
      if (list[i] === active || list[i].contains(active)) return i;
    }
    return current;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "/") {
      var box = document.getElementById("q");
      if (box) {
        event.preventDefault();
        box.focus();
        box.select();
      }
    } else if (event.key === "j" || event.key === "k") {
      if (!hits().length) return;
      event.preventDefault();
      var at = currentFromFocus();
      select(event.key === "j" ? at + 1 : (at < 0 ? 0 : at - 1));
    } else if (event.key === "o") {
      var list = hits();
      var index = currentFromFocus();
      var hit = list[index < 0 ? 0 : index];
      if (hit && hit.dataset.open) {
        event.preventDefault();
        window.location.assign(hit.dataset.open);
      }
    }
  });

  // Transcript paging: fetch the page before/after as HTML and splice its messages in.
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-load]") : null;
    if (!link) return;
    event.preventDefault();
    var direction = link.dataset.load;
    var holder = link.parentElement;
    var list = document.querySelector(".transcript-wrap > ol.transcript");
    if (!list) { window.location.assign(link.href); return; }
    link.textContent = "Loading…";
    var url = link.href + (link.href.indexOf("?") < 0 ? "?" : "&") + "partial=1";
    fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var items = doc.querySelectorAll("body > ol.transcript > li");
        var more = doc.querySelector(direction === "earlier" ? ".load-earlier" : ".load-later");
        var before = document.documentElement.scrollHeight;
        var fragment = document.createDocumentFragment();
        Array.prototype.forEach.call(items, function (item) { fragment.appendChild(document.importNode(item, true)); });
        if (direction === "earlier") {
          list.insertBefore(fragment, list.firstChild);
          window.scrollBy(0, document.documentElement.scrollHeight - before);
        } else {
          list.appendChild(fragment);
        }
        if (more) holder.replaceWith(document.importNode(more, true));
        else holder.remove();
      })
      .catch(function () { window.location.assign(link.href); });
  });

  // Opened at a message: put the keyboard focus on it too.
  document.addEventListener("DOMContentLoaded", function () {
    var anchor = document.querySelector(".msg.anchor");
    if (anchor) {
      anchor.focus({ preventScroll: true });
      anchor.scrollIntoView({ block: "center" });
    }
  });
})();
