// bridge console: live updates for the event log and a call's delivery state, and
// the one-click login link of `bridge dev`. Values from payloads are inserted with
// textContent only (never innerHTML): they are attacker-controlled strings.
"use strict";
(function () {
  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  function liveLog(table) {
    var after = table.dataset.after;
    var api = table.dataset.api;
    var filters = new URLSearchParams(table.dataset.filters || "");
    if (filters.get("before")) return; // an older page does not update
    var body = table.tBodies[0];
    function poll() {
      filters.set("after", after);
      fetch(api + "?" + filters.toString(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          after = data.last || after;
          var empty = body.querySelector("tr.empty");
          if (data.entries.length && empty) empty.remove();
          for (var i = data.entries.length - 1; i >= 0; i--) {
            var e = data.entries[i];
            if (body.querySelector('tr[data-id="' + CSS.escape(e.id) + '"]')) continue;
            var tr = document.createElement("tr");
            tr.className = "new o-" + e.outcome;
            tr.dataset.id = e.id;
            var first = document.createElement("td");
            var a = document.createElement("a");
            a.href = data.urls[e.id];
            a.textContent = e.time;
            first.appendChild(a);
            tr.appendChild(first);
            tr.appendChild(cell(e.source));
            tr.appendChild(cell(e.type));
            tr.appendChild(cell(e.event_id));
            var oc = document.createElement("td");
            var badge = document.createElement("span");
            badge.className = "badge o-" + e.outcome;
            badge.textContent = e.outcome;
            oc.appendChild(badge);
            tr.appendChild(oc);
            tr.appendChild(cell(e.reason));
            tr.appendChild(cell(e.ms, "num"));
            body.insertBefore(tr, body.firstChild);
          }
        })
        .catch(function () {})
        .finally(function () { setTimeout(poll, 1000); });
    }
    setTimeout(poll, 1000);
  }

  function liveCalls(section) {
    var api = section.dataset.api;
    var rounds = 0;
    function settled() {
      var cells = section.querySelectorAll("td.state");
      if (section.querySelector("#pending")) return false;
      for (var i = 0; i < cells.length; i++) {
        var c = cells[i].className;
        if (c.indexOf("s-waiting") >= 0 || c.indexOf("s-retrying") >= 0 || c.indexOf("s-unknown") >= 0) return false;
      }
      return true;
    }
    function poll() {
      if (settled() || rounds++ > 600) return;
      fetch(api, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          if (section.querySelector("#pending") && (data.mapped || data.dead)) {
            window.location.reload(); // now it has calls or a dead letter: render them
            return;
          }
          data.calls.forEach(function (c) {
            var td = section.querySelector('td.state[data-message-id="' + CSS.escape(c.message_id) + '"]');
            if (td) { td.textContent = c.state.text; td.className = "state s-" + c.state.name; }
          });
        })
        .catch(function () {})
        .finally(function () { setTimeout(poll, 1000); });
    }
    setTimeout(poll, 1000);
  }

  function autoLogin(form) {
    // `bridge dev` prints /console/login#token=...: the fragment never reaches a server.
    var m = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (!m) return;
    history.replaceState(null, "", window.location.pathname + window.location.search);
    form.querySelector("#token").value = decodeURIComponent(m[1]);
    form.submit();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("log");
    if (table) liveLog(table);
    var calls = document.getElementById("calls");
    if (calls && calls.dataset.api) liveCalls(calls);
    var login = document.getElementById("login-form");
    if (login) autoLogin(login);
  });
})();
