/* The system prompt on labeling pages is a <details>, rendered open or closed from the person's
 * preference (kept in their session on the server). This script reports their choice when they
 * open or close one, and keeps every system prompt on the page in step with it: the prefetched
 * next item's, and panels htmx brings in later.
 *
 * Only clicks on the summary count (mouse, or Enter and Space, which click it): `toggle` also
 * fires for a panel arriving with `open` set, which is not a choice.
 */
(function () {
  "use strict";

  var SELECTOR = "details[data-preference-url]";
  var first = document.querySelector(SELECTOR);
  var chosen = first ? first.open : null; // null: nothing on this page yet

  var csrfToken = window.reviewapp.csrfToken; // static/reviewapp/app.js, loaded first by base.html

  function applyTo(root) {
    if (chosen === null || !root.querySelectorAll) return;
    root.querySelectorAll(SELECTOR).forEach(function (box) {
      if (box.open !== chosen) box.open = chosen;
    });
  }

  document.addEventListener("click", function (event) {
    var summary = event.target.closest ? event.target.closest("summary") : null;
    var box = summary ? summary.parentElement : null;
    if (!box || !box.matches(SELECTOR) || event.defaultPrevented) return;
    chosen = !box.open; // the click's default action opens or closes it right after this
    document.querySelectorAll(SELECTOR).forEach(function (other) {
      if (other !== box) other.open = chosen;
    });
    fetch(box.getAttribute("data-preference-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": csrfToken() },
      body: "open=" + (chosen ? "1" : "0"),
    }).catch(function () {
      /* not remembered this time; the page still works */
    });
  });

  document.addEventListener("htmx:load", function (event) {
    // A panel rendered before the server had the latest choice (a prefetch racing a click).
    if (event.detail && event.detail.elt) applyTo(event.detail.elt);
  });
})();
