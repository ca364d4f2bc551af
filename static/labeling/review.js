/* The review page: the labeling page's keys (keys.js, loaded first) on the final-answer form,
 * starting at the first question not pre-filled from the labels. Enter records the answer;
 * the server then shows the next item waiting for review. */
(function () {
  "use strict";

  var area = document.getElementById("review-area");
  var keys = window.labelingKeys;
  if (!area || !keys) return;

  keys.bind({ panel: function () { return area; }, root: area });
  var all = keys.questions(area);
  var first =
    area.querySelector(".question.has-error") ||
    all.filter(function (q) { return !q.querySelector("input:checked") && !q.querySelector("textarea"); })[0] ||
    all[0];
  keys.setCurrent(area, first, false);
})();
