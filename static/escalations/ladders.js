/* The ladder editor: show a tier's usernames box only when the tier names users, and disable it
 * otherwise so it is not posted. Without this script every box shows, and the validator says
 * when a tier names both a role and users. Adding, moving and removing tiers are form posts. */
(function () {
  "use strict";

  function sync(row) {
    var select = row.querySelector(".t-who");
    if (!select) return;
    row.querySelectorAll("[data-who]").forEach(function (field) {
      var show = field.getAttribute("data-who") === select.value;
      field.hidden = !show;
      field.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !show;
      });
    });
  }

  function syncAll() {
    document.querySelectorAll(".t-row").forEach(sync);
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches(".t-who")) {
      sync(target.closest(".t-row"));
    }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", syncAll);
  } else {
    syncAll();
  }
})();
