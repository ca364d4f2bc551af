/* The approver's pages: live countdowns, the shortcut help, and the keyboard.
 *
 * Countdowns: every `.countdown[data-due]` (an ISO timestamp) ticks once a second. The page
 * carries the server's clock in `data-now`, so a laptop whose clock is off still counts to the
 * server's due time. Past it the countdown says "overdue" and gets the `overdue` class.
 *
 * Inbox: j/k move the selection, Enter opens it. Action page: a approves (the edited args when
 * the editor is open), r goes to the reject comment, e opens the args editor, c claims (or gives
 * the claim back), j/k go to the next/previous action in the inbox's order, u back to the inbox.
 * Ctrl+Enter sends the form being typed in; ? shows the help; Esc closes it or leaves a box.
 * Every decision is an ordinary form post: the server decides, this only presses the buttons.
 */
(function () {
  "use strict";

  // --- countdowns ------------------------------------------------------------------------------

  var clockHolder = document.querySelector("[data-now]");
  var serverNow = clockHolder ? Date.parse(clockHolder.getAttribute("data-now")) : NaN;
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // The same wording as countdown_text in escalations/views/approvals.py.
  function countdownText(seconds) {
    var whole = Math.floor(Math.abs(seconds));
    var days = Math.floor(whole / 86400);
    var hours = Math.floor((whole % 86400) / 3600);
    var minutes = Math.floor((whole % 3600) / 60);
    var secs = whole % 60;
    var span;
    if (days) span = days + "d " + hours + "h";
    else if (hours) span = hours + "h " + pad(minutes) + "m";
    else span = minutes + "m " + pad(secs) + "s";
    return (seconds < 0 ? "overdue " : "in ") + span;
  }

  var countdowns = Array.prototype.slice.call(document.querySelectorAll(".countdown[data-due]"));

  function tick() {
    var now = Date.now() + skew;
    countdowns.forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) return;
      var seconds = (due - now) / 1000;
      el.textContent = countdownText(seconds);
      el.classList.toggle("overdue", seconds < 0);
    });
  }

  if (countdowns.length) {
    tick();
    setInterval(tick, 1000);
  }

  // --- help ------------------------------------------------------------------------------------

  function help() {
    return document.getElementById("shortcuts");
  }

  function toggleHelp(show) {
    var box = help();
    if (!box) return;
    box.hidden = show === undefined ? !box.hidden : !show;
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-action=help]")) {
      toggleHelp();
      return;
    }
    if (event.target === help()) toggleHelp(false); // a click on the backdrop
  });

  // --- forms: one submit each ------------------------------------------------------------------

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.closest(".decision-card")) return;
    if (event.defaultPrevented) return; // app.js's data-confirm said no
    if (form.dataset.busy) {
      event.preventDefault(); // a second press while the first is on its way
      return;
    }
    form.dataset.busy = "1";
  });

  function send(form) {
    if (form && !form.dataset.busy) form.requestSubmit();
  }

  // --- the inbox -------------------------------------------------------------------------------

  var table = document.getElementById("inbox");
  var rows = table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-href]")) : [];
  var selected = -1;

  function select(index) {
    if (!rows.length) return;
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, n) {
      row.classList.toggle("selected", n === selected);
      if (n === selected) row.setAttribute("aria-selected", "true");
      else row.removeAttribute("aria-selected");
    });
    rows[selected].scrollIntoView({ block: "nearest" });
  }

  if (rows.length) {
    select(0);
    table.addEventListener("click", function (event) {
      var row = event.target.closest("tr[data-href]");
      if (row) select(rows.indexOf(row));
    });
  }

  // --- the action page -------------------------------------------------------------------------

  var editPanel = document.getElementById("edit-panel");

  function follow(id) {
    var link = document.getElementById(id);
    if (link) window.location.assign(link.href);
  }

  function openEditor() {
    if (!editPanel) return;
    editPanel.open = true;
    var box = document.getElementById("edit-args");
    if (box) {
      box.focus();
      box.scrollIntoView({ block: "nearest" });
    }
  }

  function approve() {
    // With the editor open, what it holds is what the approver means to approve.
    send(document.getElementById(editPanel && editPanel.open ? "edit-form" : "approve-form"));
  }

  function focusReject() {
    var box = document.getElementById("reject-comment");
    if (box) {
      box.focus();
      box.scrollIntoView({ block: "nearest" });
    }
  }

  // --- the keyboard ----------------------------------------------------------------------------

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    if (el.tagName !== "INPUT") return false;
    return ["radio", "checkbox", "button", "submit", "reset", "range", "color", "file", "image"].indexOf(el.type) < 0;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    var target = event.target;
    var typing = isTyping(target);

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
      if (typing && target.form && target.form.closest(".decision-card")) {
        event.preventDefault();
        send(target.form);
      }
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;

    if (event.key === "?") {
      event.preventDefault();
      toggleHelp();
      return;
    }
    if (help() && !help().hidden) return;

    if (rows.length) {
      if (event.key === "j" || event.key === "k") {
        event.preventDefault();
        select(selected + (event.key === "j" ? 1 : -1));
      } else if (event.key === "Enter") {
        if (target.closest && target.closest("a, button, summary")) return; // the control's own action
        event.preventDefault();
        window.location.assign(rows[selected].getAttribute("data-href"));
      }
      return;
    }

    var handled = true;
    if (event.key === "j") follow("next-link");
    else if (event.key === "k") follow("previous-link");
    else if (event.key === "u") follow("inbox-link");
    else if (event.key === "a") approve();
    else if (event.key === "r") focusReject();
    else if (event.key === "e") openEditor();
    else if (event.key === "c") send(document.getElementById("claim-form"));
    else handled = false;
    if (handled) event.preventDefault();
  });
})();
