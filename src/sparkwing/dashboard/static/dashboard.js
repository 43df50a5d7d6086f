// sparkwing dashboard: the small script the pages ship. Pages work without it (read only,
// reload for news); with it they update live over server-sent events. No inline script and
// no HTML built here from data: every fragment is rendered (and escaped) by the server.
(function () {
  "use strict";
  var root = document.documentElement;
  var KEY = "sparkwing-theme";
  try {
    var saved = localStorage.getItem(KEY);
    if (saved === "light" || saved === "dark") root.dataset.theme = saved;
  } catch (e) { /* storage disabled: the system theme applies */ }

  function currentTheme() {
    if (root.dataset.theme) return root.dataset.theme;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function setupTheme() {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    var label = function () {
      button.textContent = currentTheme() === "dark" ? "Light theme" : "Dark theme";
    };
    button.hidden = false;
    label();
    // Following the system's theme until one is picked: the label follows it too.
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", label);
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem(KEY, next); } catch (e) { /* not kept */ }
      label();
    });
  }

  // Regions of a page (runs table, a run's graph, jobs, gates...) replaced when they change.
  function setupRegions() {
    var holder = document.querySelector("[data-live]");
    if (!holder || !window.EventSource) return;
    var source = new EventSource(holder.getAttribute("data-live"));
    source.addEventListener("region", function (event) {
      var update = JSON.parse(event.data);
      var target = document.getElementById(update.id);
      if (!target) return;
      // A half-typed comment in a gate's form survives updates of other regions; its own
      // region is only re-sent when the gates change.
      if (target.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
      target.innerHTML = update.html;
    });
    source.addEventListener("end", function () { source.close(); });
  }

  // A job's log: new lines appended as they are written; the page follows the end while the
  // box is ticked.
  function setupLog() {
    var log = document.getElementById("log-lines");
    if (!log || !log.dataset.follow || !window.EventSource) return;
    var follow = document.getElementById("follow");
    var state = document.getElementById("log-state");
    var source = new EventSource(log.dataset.follow);
    var stop = function (text) {
      source.close();
      if (state) state.textContent = text;
    };
    source.addEventListener("lines", function (event) {
      log.insertAdjacentHTML("beforeend", event.data);
      if (follow && follow.checked) window.scrollTo(0, document.body.scrollHeight);
    });
    source.addEventListener("end", function () { stop("the run has finished"); });
    // A reconnect would repeat lines: stop instead and let a reload pick up from the end.
    source.onerror = function () { stop("live updates stopped: reload for newer lines"); };
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupTheme();
    setupRegions();
    setupLog();
  });
})();
