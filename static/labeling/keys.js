/* The labeling keyboard, shared by the labeling page (labeling.js) and the review page
 * (review.js): digits pick an option of the current question, arrows move between questions,
 * Enter sends the form, s skips (where there is a skip form), j/k walk the transcript's turns,
 * ? shows the help. Load it before the page's own script; it only defines window.labelingKeys
 * until a page calls bind().
 *
 * A "panel" is the element holding the form (form.label-form with .question fieldsets), the
 * turns (article.turn) and, on the labeling page, form.skip-form. The page says which panel is
 * current, since the labeling page swaps them. */
(function () {
  "use strict";

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    if (el.tagName !== "INPUT") return false;
    return ["radio", "checkbox", "button", "submit", "reset", "range", "color", "file", "image"].indexOf(el.type) < 0;
  }

  function questions(panel) {
    return panel ? Array.prototype.slice.call(panel.querySelectorAll("form.label-form .question")) : [];
  }

  function currentQuestion(panel) {
    return panel ? panel.querySelector("form.label-form .question.current") : null;
  }

  function setCurrent(panel, question, focus) {
    if (!question) return;
    questions(panel).forEach(function (q) { q.classList.toggle("current", q === question); });
    if (focus) {
      question.focus({ preventScroll: true });
      question.scrollIntoView({ block: "nearest" });
    }
  }

  function moveQuestion(panel, delta) {
    var all = questions(panel);
    if (!all.length) return;
    var i = all.indexOf(currentQuestion(panel));
    var next = all[Math.max(0, Math.min(all.length - 1, (i < 0 ? 0 : i + delta)))];
    setCurrent(panel, next, true);
  }

  function pickByDigit(panel, digit) {
    var q = currentQuestion(panel);
    if (!q) return false;
    var input = q.querySelector('input[data-kbd="' + digit + '"]');
    if (!input) return false;
    if (input.type === "checkbox") input.checked = !input.checked;
    else input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    if (input.type === "radio") {
      // One answer per question: move on, so "1 Enter" or "2 4 Enter" labels an item.
      var all = questions(panel);
      var i = all.indexOf(q);
      if (i >= 0 && i < all.length - 1) setCurrent(panel, all[i + 1], true);
    }
    return true;
  }

  function moveTurn(panel, delta) {
    var turns = Array.prototype.slice.call(panel.querySelectorAll("article.turn"));
    if (!turns.length) return;
    var i = -1;
    turns.forEach(function (t, n) { if (t.classList.contains("highlight")) i = n; });
    i = i < 0 ? (delta > 0 ? 0 : turns.length - 1) : Math.max(0, Math.min(turns.length - 1, i + delta));
    turns.forEach(function (t, n) { t.classList.toggle("highlight", n === i); });
    turns[i].scrollIntoView({ block: "nearest" });
  }

  function help() {
    return document.getElementById("shortcuts");
  }

  function toggleHelp(show) {
    var box = help();
    if (!box) return;
    box.hidden = show === undefined ? !box.hidden : !show;
  }

  // options.panel(): the current panel or null; options.root: where focus moves are watched.
  function bind(options) {
    var currentPanel = options.panel;
    var root = options.root || document;

    document.addEventListener("click", function (event) {
      var trigger = event.target.closest("[data-action=help]");
      if (trigger) {
        toggleHelp();
        return;
      }
      if (event.target === help()) toggleHelp(false); // a click on the backdrop
      var panel = currentPanel();
      var question = event.target.closest(".question");
      if (panel && question && panel.contains(question)) setCurrent(panel, question, false);
      var turn = event.target.closest("article.turn");
      if (panel && turn && panel.contains(turn)) {
        panel.querySelectorAll("article.turn.highlight").forEach(function (t) { t.classList.remove("highlight"); });
        turn.classList.add("highlight");
      }
    });

    root.addEventListener("focusin", function (event) {
      var panel = currentPanel();
      var question = event.target.closest && event.target.closest(".question");
      if (panel && question && panel.contains(question)) setCurrent(panel, question, false);
    });

    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.isComposing) return;
      var target = event.target;
      var typing = isTyping(target);
      var panel = currentPanel();

      if (event.key === "Escape") {
        if (help() && !help().hidden) {
          toggleHelp(false);
          event.preventDefault();
        } else if (typing) {
          target.blur();
        }
        return;
      }
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        // Ctrl+Enter sends the form you are typing in (the label, or a comment).
        var form = typing && target.form ? target.form : panel && panel.querySelector("form.label-form");
        if (form && (!panel || panel.contains(form))) {
          event.preventDefault();
          form.requestSubmit();
        }
        return;
      }
      if (typing || event.ctrlKey || event.metaKey || event.altKey) return;

      if (event.key === "?") {
        event.preventDefault();
        toggleHelp();
        return;
      }
      if (!panel) return;
      var labelForm = panel.querySelector("form.label-form");

      if (/^[0-9]$/.test(event.key)) {
        if (pickByDigit(panel, event.key)) event.preventDefault();
      } else if (event.key === "Enter") {
        if (target.closest && target.closest("button, a, summary")) return; // the control's own action
        if (labelForm) {
          event.preventDefault();
          labelForm.requestSubmit();
        }
      } else if (event.key === "s") {
        var skipForm = panel.querySelector("form.skip-form");
        if (skipForm) {
          event.preventDefault();
          skipForm.requestSubmit();
        }
      } else if (event.key === "j" || event.key === "k") {
        event.preventDefault();
        moveTurn(panel, event.key === "j" ? 1 : -1);
      } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (target.type === "radio" || target.type === "checkbox") return; // arrows move within the options
        event.preventDefault();
        moveQuestion(panel, event.key === "ArrowDown" ? 1 : -1);
      }
    });
  }

  window.labelingKeys = {
    bind: bind,
    questions: questions,
    setCurrent: setCurrent,
    toggleHelp: toggleHelp,
  };
})();
