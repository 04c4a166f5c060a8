// ironfence administration: progressive enhancement only; every page works without it.
// 1. Forms or buttons with data-confirm ask before submitting (deletions).
// 2. A page whose <main> has data-refresh="N" reloads itself every N seconds while visible
//    (the dashboard), unless a form field has focus.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var f = e.target;
    var msg = f.getAttribute("data-confirm") || (e.submitter && e.submitter.getAttribute("data-confirm"));
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
  var main = document.getElementById("main");
  var every = main && parseInt(main.getAttribute("data-refresh") || "0", 10);
  if (every > 0) {
    setInterval(function () {
      var a = document.activeElement;
      var typing = a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT");
      if (!document.hidden && !typing) { window.location.reload(); }
    }, every * 1000);
  }
})();
