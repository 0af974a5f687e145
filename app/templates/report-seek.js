// The report plays: every element with data-t (seconds) seeks the recording to that moment.
// Inlined into report.html and allowed there by its hash in the report's CSP (app/security.py),
// so it runs served and offline alike. Served, the video is the server's recording (with the
// page's ?token=); opened from a file, it is the recording file beside the report.
(function () {
  "use strict";
  var video = document.getElementById("recording");
  if (!video) return;
  var served = location.protocol === "http:" || location.protocol === "https:";
  var src = video.getAttribute("data-src");
  if (served && src) {
    var token = new URLSearchParams(location.search).get("token");
    if (token) src += (src.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(token);
    var sources = video.querySelectorAll("source");
    for (var i = 0; i < sources.length; i += 1) sources[i].remove();
    video.src = src;
  }
  video.preload = "metadata";
  video.load();
  document.documentElement.classList.add("seekable");

  function clock(t) {
    var s = Math.max(0, Math.floor(t));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  // What is not a button already becomes one for the keyboard and screen readers; a
  // transcript's words are one tab stop, walked with the arrow keys.
  var label = video.getAttribute("data-seek-label") || "";
  var moments = document.querySelectorAll("[data-t]");
  for (var j = 0; j < moments.length; j += 1) {
    var el = moments[j];
    if (el.tagName === "BUTTON") continue;
    el.setAttribute("role", "button");
    var word = el.classList.contains("word");
    el.setAttribute("tabindex", word && el.previousElementSibling ? "-1" : "0");
    if (!word) {
      var text = (el.getAttribute("aria-label") || el.textContent || "").trim();
      var at = clock(parseFloat(el.getAttribute("data-t")));
      el.setAttribute("aria-label", label + " " + at + (text ? " · " + text : ""));
    }
  }

  function seek(el) {
    var t = parseFloat(el.getAttribute("data-t"));
    if (!isFinite(t) || t < 0) return;
    video.currentTime = t;
    var playing = video.play();
    if (playing && playing.catch) playing.catch(function () {});
    var box = video.getBoundingClientRect();
    if (box.bottom < 0 || box.top > window.innerHeight) video.scrollIntoView({ block: "nearest" });
  }

  function moment(node) {
    var el = node && node.closest ? node.closest("[data-t]") : null;
    return el && el !== video ? el : null;
  }

  document.addEventListener("click", function (event) {
    var el = moment(event.target);
    if (!el) return;
    event.preventDefault();
    seek(el);
  });

  document.addEventListener("keydown", function (event) {
    var el = moment(event.target);
    if (!el || el.tagName === "BUTTON") return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      seek(el);
      return;
    }
    if (!el.classList.contains("word")) return;
    var words = Array.prototype.slice.call(el.parentNode.querySelectorAll(".word"));
    var index = words.indexOf(el);
    var next =
      event.key === "ArrowRight" ? words[index + 1]
      : event.key === "ArrowLeft" ? words[index - 1]
      : event.key === "Home" ? words[0]
      : event.key === "End" ? words[words.length - 1]
      : null;
    if (!next) return;
    event.preventDefault();
    el.setAttribute("tabindex", "-1");
    next.setAttribute("tabindex", "0");
    next.focus();
  });
})();
