// Shared by every page (base.html loads it first; the page scripts are deferred after it).
// Behaviour the templates used to carry in inline handlers, which the Content-Security-Policy
// does not run: `data-autosubmit` submits a select's form on change, `data-confirm` asks first.
// `reviewapp.csrfToken()` is the CSRF token for the page scripts' own POSTs.
window.reviewapp = window.reviewapp || {};

// The token base.html puts in <body hx-headers>, else a form's hidden field.
window.reviewapp.csrfToken = function () {
  try {
    const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    if (headers["X-CSRFToken"]) return headers["X-CSRFToken"];
  } catch (e) {
    /* fall through to the form field */
  }
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
};

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.dataset.autosubmit !== undefined && target.form) {
    target.form.requestSubmit();
  }
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
