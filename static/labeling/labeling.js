/* The labeling page: keyboard shortcuts, the prefetched next item, draft autosave and time on
 * task. Panels come and go (htmx swaps, prefetch), so every listener is delegated from the
 * document or the work area and nothing needs rebinding. The keys themselves are keys.js, shared
 * with the review page and loaded first.
 *
 * Panels in #work-area:
 *   .active      the item on screen (exactly one)
 *   .prefetched  the next item, already leased and rendered, hidden until the active one is done
 *   .leaving     an item whose label or skip is on its way; hidden, replaced by the response
 *   .incoming    a panel just swapped in by htmx, about to be activated
 */
(function () {
  "use strict";

  var area = document.getElementById("work-area");
  var keys = window.labelingKeys;
  if (!area || !keys) return;

  var DRAFT_DELAY_MS = 500;
  var nextUrl = area.getAttribute("data-next-url") || "";
  var inFlight = 0; // label and skip requests on their way
  var held = []; // submits waiting for those to finish, so the server sees them in order
  var prefetching = false;
  var exhaustedAfter = null; // the item after which the server had nothing more
  var clocks = {}; // item id -> {spent, since}: visible time only
  var draftTimers = {};

  // --- small helpers ---------------------------------------------------------------------------

  var csrfToken = window.reviewapp.csrfToken; // static/reviewapp/app.js, loaded first by base.html

  function panels() {
    return Array.prototype.filter.call(area.children, function (el) {
      return el.classList.contains("item-panel");
    });
  }

  function activePanel() {
    return panels().filter(function (p) { return p.classList.contains("active"); })[0] || null;
  }

  function prefetchedPanel() {
    return panels().filter(function (p) { return p.classList.contains("prefetched"); })[0] || null;
  }

  var toastTimer = null;
  function toast(message) {
    var box = document.getElementById("toast");
    if (!box || !message) return;
    box.textContent = message; // text, never HTML
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, 6000);
  }

  // --- time on task: counted only while the item is on screen and the tab is visible -----------

  function resumeClock(id) {
    if (!id) return;
    var c = clocks[id] || (clocks[id] = { spent: 0, since: null });
    if (c.since === null && !document.hidden) c.since = performance.now();
  }

  function pauseClock(id) {
    var c = clocks[id];
    if (c && c.since !== null) {
      c.spent += performance.now() - c.since;
      c.since = null;
    }
  }

  function elapsed(id) {
    var c = clocks[id];
    if (!c) return 0;
    return Math.round(c.spent + (c.since === null ? 0 : performance.now() - c.since));
  }

  document.addEventListener("visibilitychange", function () {
    var panel = activePanel();
    if (!panel) return;
    if (document.hidden) pauseClock(panel.dataset.item);
    else resumeClock(panel.dataset.item);
  });

  // --- questions -------------------------------------------------------------------------------

  function answered(question) {
    if (question.dataset.type === "text") {
      var box = question.querySelector("textarea");
      return !!(box && box.value.trim());
    }
    return !!question.querySelector("input:checked");
  }

  function looksComplete(form) {
    return Array.prototype.every.call(form.querySelectorAll(".question[data-required]"), answered);
  }

  // --- panels ----------------------------------------------------------------------------------

  // Instructions stay open or closed as the annotator last left them, item after item.
  function remembered(key) {
    try {
      return window.localStorage.getItem("labeling:" + key);
    } catch (e) {
      return null;
    }
  }

  area.addEventListener(
    "toggle",
    function (event) {
      var box = event.target;
      if (!box.matches || !box.matches("details[data-remember]")) return;
      try {
        window.localStorage.setItem("labeling:" + box.getAttribute("data-remember"), box.open ? "open" : "closed");
      } catch (e) {
        /* private mode: just do not remember */
      }
    },
    true
  );

  function activate(panel) {
    var current = activePanel();
    if (current && current !== panel) {
      pauseClock(current.dataset.item);
      current.classList.remove("active");
      if (!current.classList.contains("leaving")) {
        // Still leased and untouched: keep it as the next item; anything else has had its turn.
        if (current.dataset.state === "ready") current.classList.add("prefetched");
        else current.remove();
      }
    }
    panels().forEach(function (p) {
      if (p !== panel && panel.dataset.item && p.dataset.item === panel.dataset.item) p.remove(); // a stale copy
    });
    panel.classList.remove("prefetched", "leaving");
    panel.classList.add("active");
    resumeClock(panel.dataset.item);
    if (document.activeElement && document.activeElement !== document.body && !panel.contains(document.activeElement)) {
      document.activeElement.blur();
    }
    panel.querySelectorAll("details[data-remember]").forEach(function (box) {
      var saved = remembered(box.getAttribute("data-remember"));
      if (saved !== null) box.open = saved === "open";
    });
    var first = panel.querySelector(".question.has-error") || keys.questions(panel)[0];
    keys.setCurrent(panel, first, false);
    window.scrollTo(0, 0);
    maybePrefetch();
  }

  function maybePrefetch() {
    var current = activePanel();
    if (!nextUrl || prefetching || inFlight || held.length || !current || prefetchedPanel()) return;
    if (current.dataset.mode !== "work" || current.dataset.state === "done") return;
    var exclude = current.dataset.item;
    if (!exclude || exhaustedAfter === exclude) return;
    prefetching = true;
    fetch(nextUrl + "?exclude=" + encodeURIComponent(exclude), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
    })
      .then(function (response) {
        if (response.status === 204) {
          exhaustedAfter = exclude;
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html) addPrefetched(html);
      })
      .catch(function () { /* no prefetch: submit falls back to claiming on the server */ })
      .then(function () { prefetching = false; });
  }

  function addPrefetched(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var panel = template.content.querySelector(".item-panel");
    if (!panel || !panel.dataset.item) return;
    // The server may hand back an item already on the page (a submit claimed it first).
    if (area.querySelector('.item-panel[data-item="' + panel.dataset.item + '"]')) return;
    panel.classList.remove("active");
    panel.classList.add("prefetched");
    area.appendChild(panel);
    if (window.htmx) window.htmx.process(panel);
  }

  // --- drafts ----------------------------------------------------------------------------------

  function saveDraft(form) {
    var panel = form.closest(".item-panel");
    if (!panel || panel.dataset.mode !== "work" || !panel.classList.contains("active")) return;
    var body = new URLSearchParams(new FormData(form));
    body.delete("csrfmiddlewaretoken");
    fetch(panel.dataset.draftUrl, {
      method: "PUT",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString(),
    }).catch(function () { /* a lost draft is only a convenience lost */ });
  }

  function scheduleDraft(event) {
    var form = event.target.closest && event.target.closest("form.label-form");
    if (!form || !event.target.name || event.target.name.indexOf("a-") !== 0) return;
    var id = form.closest(".item-panel").dataset.item;
    clearTimeout(draftTimers[id]);
    draftTimers[id] = setTimeout(function () { saveDraft(form); }, DRAFT_DELAY_MS);
  }

  area.addEventListener("input", scheduleDraft);
  area.addEventListener("change", scheduleDraft);

  // --- submit and skip -------------------------------------------------------------------------

  function isWorkForm(el) {
    return el instanceof HTMLFormElement && (el.classList.contains("label-form") || el.classList.contains("skip-form"));
  }

  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt;
    if (!isWorkForm(form) || !area.contains(form)) return;
    var panel = form.closest(".item-panel");
    event.preventDefault();
    if (!panel.classList.contains("active") || panel.dataset.busy) return; // one answer per item
    panel.dataset.busy = "1";
    var id = panel.dataset.item;
    clearTimeout(draftTimers[id]);
    if (form.classList.contains("label-form")) form.elements.time_spent_ms.value = String(elapsed(id));
    var next = prefetchedPanel();
    var skipping = form.classList.contains("skip-form");
    // Show the prefetched item at once (the server then answers with nothing instead of
    // claiming), unless the form is visibly incomplete and will come straight back.
    var switchTo = next && panel.dataset.mode === "work" && (skipping || looksComplete(form)) ? next : null;
    form.elements.shown.value = switchTo ? switchTo.dataset.item : "";
    var send = function () {
      inFlight += 1;
      event.detail.issueRequest(true);
    };
    if (inFlight) held.push({ panel: panel, send: send });
    else send();
    if (switchTo) {
      // After the request is counted, so the next prefetch waits for the server to see it.
      panel.classList.add("leaving");
      activate(switchTo);
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    // 422 (answers do not fit) and 409 (lost lease) carry a panel or a comment box to show.
    if ((status === 409 || status === 422) && area.contains(event.detail.elt)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    // When the form was swapped out, htmx re-fires this event on an ancestor still on the
    // page and `detail.elt` is that ancestor; the request's own element is in requestConfig.
    var form = (event.detail.requestConfig && event.detail.requestConfig.elt) || event.detail.elt;
    if (!isWorkForm(form)) return;
    inFlight = Math.max(0, inFlight - 1);
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    var panel = form.closest(".item-panel");
    if (status >= 200 && status < 300 && form.classList.contains("label-form") && form.elements.mode.value === "work") {
      var counter = document.getElementById("session-count");
      if (counter) counter.textContent = String(Number(counter.textContent || "0") + 1);
    }
    var handled = status === 409 || status === 422 || (status >= 200 && status < 300);
    if (!handled && panel && document.body.contains(panel)) {
      // The server or the network failed: nothing was saved, so bring the item back.
      delete panel.dataset.busy;
      activate(panel);
      toast("Could not reach the server; your answers are still here. Try again.");
    }
    if (status === 422) {
      // The item came back to be fixed; whatever was queued behind it waits for the annotator.
      held.forEach(function (h) { delete h.panel.dataset.busy; });
      held = [];
    }
    if (held.length) held.shift().send();
    else maybePrefetch();
  });

  document.addEventListener("htmx:load", function (event) {
    // A panel from a submit or skip response: the next item, the same item with errors, or
    // "all done". It arrives hidden (.incoming) and is shown here, ready for keys.
    var el = event.detail.elt;
    if (el && el.classList && el.classList.contains("incoming") && area.contains(el)) {
      el.classList.remove("incoming");
      activate(el);
    }
  });

  document.addEventListener("labeling-notice", function (event) {
    toast(event.detail && event.detail.message);
  });

  // --- the keyboard (keys.js) ------------------------------------------------------------------

  keys.bind({ panel: activePanel, root: area });

  // --- start -----------------------------------------------------------------------------------

  // The page itself never leases (link prefetchers and background tabs load it too): a start
  // panel's form claims the first item, sent here once the page is really on screen.
  function startWhenShown(panel) {
    var form = panel.querySelector("form.start-form");
    if (!form) return;
    var sent = false;
    function send() {
      if (sent || document.hidden || document.prerendering || !document.body.contains(form)) return;
      sent = true;
      document.removeEventListener("visibilitychange", send);
      document.removeEventListener("prerenderingchange", send);
      form.requestSubmit();
    }
    function watch() {
      document.addEventListener("visibilitychange", send);
      document.addEventListener("prerenderingchange", send);
      send();
    }
    // htmx binds hx-post on DOMContentLoaded, after this deferred script has run.
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
    else watch();
  }

  var first = activePanel();
  if (first && first.dataset.state === "start") startWhenShown(first);
  else if (first) activate(first);
})();
