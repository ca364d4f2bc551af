/* The rubric builder and the queue editor: show only the fields that apply to a question's
 * type (or a rule's strategy), and disable the others so they are not posted. Without this
 * script every field shows, and the validators say which ones do not apply. */
(function () {
  "use strict";

  function sync(row) {
    var select = row.querySelector(".q-type, .r-strategy");
    if (!select) return;
    var value = select.value || "none";
    row.querySelectorAll("[data-types]").forEach(function (field) {
      var show = field.getAttribute("data-types").split(" ").indexOf(value) !== -1;
      field.hidden = !show;
      field.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !show;
      });
    });
  }

  function syncAll() {
    document.querySelectorAll(".q-row, .r-row").forEach(sync);
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches(".q-type, .r-strategy")) {
      sync(target.closest(".q-row, .r-row"));
    }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", syncAll);
  } else {
    syncAll();
  }
})();
