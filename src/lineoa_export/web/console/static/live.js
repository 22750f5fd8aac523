// Parts of a console page that refresh themselves while the page is visible.
//
// A page opts in with an element <div hidden data-live="URL" data-live-every="MS">: MS milliseconds
// (2000 unless given) after the last answer, this script fetches URL from the console itself (the CSP
// allows connect-src 'self' only) and, for every element with data-live-part and an id in the answer,
// replaces the page's element of that id when it changed. The filters are in URL already, so they are
// kept. An answer may ask for more time before the next fetch (header X-Live-Every, in ms: the server
// says so when the answer was slow to make, see web/console/live.py); never less than MS. A hidden tab
// fetches nothing, and fetches at once when shown again. An answer that is not a plain 200 (logged out:
// a redirect to the login page; the activation deleted: 404) stops the refreshing; the page still shows
// its last figures. Without JavaScript none of this runs and the page is as fresh as its last load.
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
    var timer = null;

    function later(ms) {
      window.clearTimeout(timer);
      timer = window.setTimeout(tick, ms);
    }

    function tick() {
      timer = null;
      if (stopped || busy || document.visibilityState !== "visible") {
        return; // a hidden tab waits for visibilitychange
      }
      busy = true;
      var next = every;
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
        .then(function (answer) {
          if (answer.status !== 200 || answer.redirected) {
            stopped = true;
            return null;
          }
          next = Math.max(every, parseInt(answer.headers.get("X-Live-Every") || "0", 10) || 0);
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
          if (!stopped) {
            later(next);
          }
        });
    }

    later(every);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && !busy && !stopped) {
        later(0);
      }
    });
  }

  document.querySelectorAll("[data-live]").forEach(watch);
})();
