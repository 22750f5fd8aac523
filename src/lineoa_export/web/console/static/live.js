// Parts of a console page that refresh themselves while the page is visible.
//
// A page opts in with an element <div hidden data-live="URL" data-live-every="MS">: every MS
// milliseconds (2000 unless given) this script fetches URL from the console itself (the CSP allows
// connect-src 'self' only) and, for every element with data-live-part and an id in the answer,
// replaces the page's element of that id when it changed. Filters and the page's cursor are in URL
// already, so they are kept. An answer that is not a plain 200 (logged out: a redirect to the login
// page; the activation deleted: 404) stops the refreshing; the page still shows its last figures.
// Without JavaScript none of this runs and the page is as fresh as its last load.
(function () {
  "use strict";

  function replaceParts(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    fresh.querySelectorAll("[data-live-part][id]").forEach(function (part) {
      var current = document.getElementById(part.id);
      if (current && current.outerHTML !== part.outerHTML) {
        current.replaceWith(document.importNode(part, true));
      }
    });
  }

  function watch(marker) {
    var url = marker.getAttribute("data-live");
    var every = parseInt(marker.getAttribute("data-live-every") || "2000", 10);
    var stopped = false;
    var busy = false;

    function tick() {
      if (stopped || busy || document.visibilityState !== "visible") {
        return;
      }
      busy = true;
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
        .then(function (answer) {
          if (answer.status !== 200 || answer.redirected) {
            stopped = true;
            return null;
          }
          return answer.text();
        })
        .then(function (html) {
          if (html !== null) {
            replaceParts(html);
          }
        })
        .catch(function () {
          // The server is restarting or the network blinked: try again at the next tick.
        })
        .then(function () {
          busy = false;
        });
    }

    window.setInterval(tick, every);
    document.addEventListener("visibilitychange", tick);
  }

  document.querySelectorAll("[data-live]").forEach(watch);
})();
