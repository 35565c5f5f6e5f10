/* stopnet live feed: keeps an operation's pages up to date without reloading them.
 *
 * Connects an EventSource to /api/v1/operations/{code}/feed and
 *  - prepends new events to <ol id="live-events"> (the live activity page);
 *  - adds or updates rows of <table id="cases"> (the case list), when the list shows page 1 with no
 *    filter the feed cannot apply; otherwise it says how many new cases a reload would show;
 *  - dispatches a "stopnet:live" DOM event (detail: the event's data) for other scripts (dashboards).
 *
 * Configuration: an element #live-feed with data-op (operation code), data-cursor (the last event id
 * the page already reflects: events after it are replayed) and data-query (feed filters). Without it,
 * the operation is read from a /operations/{code}/cases URL and its filters.
 * The browser reconnects by itself and sends Last-Event-ID, so nothing is lost or shown twice.
 * No inline script, no innerHTML: text goes through textContent (CSP script-src 'self').
 */
(function () {
  "use strict";

  var FEED_FILTERS = ["commodity_group", "region", "country", "channel"];
  var TYPES = [
    "case.created", "case.corrected", "case.submitted", "case.validated",
    "alert.published", "alert.acknowledged", "message.posted", "reset"
  ];
  var CASE_LABELS = {
    "case.created": "New case", "case.corrected": "Corrected",
    "case.submitted": "Submitted", "case.validated": "Validated"
  };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") { node.textContent = attrs[k]; }
        else if (k === "className") { node.className = attrs[k]; }
        else { node.setAttribute(k, attrs[k]); }
      });
    }
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function safeUrl(url) {
    return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/" ? url : "#";
  }

  function thousands(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  function config() {
    var root = document.getElementById("live-feed");
    if (root && root.dataset.op) {
      return {
        op: root.dataset.op,
        cursor: root.dataset.cursor || "",
        query: root.dataset.query || "",
        user: root.dataset.user || ""
      };
    }
    var m = window.location.pathname.match(/^\/operations\/([^\/]+)\/cases\/?$/);
    if (!m || !document.getElementById("cases") && !document.getElementById("empty")) { return null; }
    var params = new URLSearchParams(window.location.search);
    var query = new URLSearchParams();
    FEED_FILTERS.forEach(function (k) { if (params.get(k)) { query.set(k, params.get(k)); } });
    query.set("types", "case");
    return { op: decodeURIComponent(m[1]), cursor: "", query: query.toString(), user: "" };
  }

  /* ---- the case list (table#cases of the cases page) */

  function listAcceptsNewRows() {
    var params = new URLSearchParams(window.location.search);
    var ok = true;
    params.forEach(function (value, key) {
      if (!value) { return; }
      if (key === "page") { ok = ok && value === "1"; }
      else if (key === "sort") { ok = ok && value === "-detected_on"; }  /* newest first: new rows go on top */
      else if (FEED_FILTERS.indexOf(key) < 0 && key !== "page_size") { ok = false; }
    });
    return ok;
  }

  function caseCells(c) {
    var seizures = c.seizures || [];
    var link = el("a", { href: safeUrl(c.url), text: c.reference });
    return [
      el("td", null, [link]),
      el("td", { className: "nowrap", text: c.detected_on || "" }),
      el("td", { text: c.reporting_org || "" }),
      el("td", { text: (c.channel || "") + (c.is_ecommerce ? " · e-com" : "") }),
      el("td", { className: "nowrap", text: (c.origin_country || "?") + " → " + (c.destination_country || c.reporting_country || "?") }),
      el("td", { text: seizures.map(function (s) { return s.commodity_code; }).join(", ") }),
      el("td", { className: "num", text: thousands(c.total_pieces) }),
      el("td", { className: "num", text: c.total_weight_kg || "" }),
      el("td", null, [el("span", { className: "status " + c.status, text: c.status })])
    ];
  }

  var hiddenNew = 0;

  function updateCaseList(data) {
    var c = data.case;
    var table = document.getElementById("cases");
    var link = document.querySelector('#cases a[href="/cases/' + Number(c.id) + '"]');
    if (link) {
      var row = link.closest("tr");
      var cells = caseCells(c);
      while (row.firstChild) { row.removeChild(row.firstChild); }
      cells.forEach(function (td) { row.appendChild(td); });
      row.classList.add("live-updated");
      return;
    }
    if (data.type !== "case.created" && data.type !== "case.submitted") { return; }
    if (!table || !listAcceptsNewRows()) {
      hiddenNew += 1;
      say(document.getElementById("live-status"), hiddenNew + " new case" + (hiddenNew > 1 ? "s" : "") + " since this page was loaded: reload to see them.");
      return;
    }
    var tr = el("tr", { className: "live-new", "data-case-id": String(c.id) }, caseCells(c));
    var body = table.tBodies[0];
    body.insertBefore(tr, body.firstChild);
    countOneMore();
  }

  /* the count line keeps its words: only the number of cases (and of pages) changes */
  function countOneMore() {
    var count = document.getElementById("count");
    var total = document.getElementById("count-total");
    if (!count || !total) { return; }
    var n = parseInt(count.getAttribute("data-total"), 10);
    if (isNaN(n)) { return; }
    n += 1;
    count.setAttribute("data-total", String(n));
    total.textContent = thousands(n);
    var noun = document.getElementById("count-noun");
    if (noun) { noun.textContent = n === 1 ? "case" : "cases"; }
    var pages = document.getElementById("count-pages");
    var size = parseInt(count.getAttribute("data-page-size"), 10);
    if (pages && size > 0) { pages.textContent = thousands(Math.ceil(n / size)); }
  }

  /* ---- the activity list (ol#live-events of the live page) */

  function eventItem(data, user) {
    var kind = data.type.split(".")[0];
    var at = data.at ? String(data.at).slice(0, 19).replace("T", " ") : "";
    var parts = [el("time", { datetime: data.at || "", className: "muted nowrap", text: at }), " "];
    if (kind === "case" && data.case) {
      var c = data.case;
      var seizures = c.seizures || [];
      parts.push(el("b", { text: CASE_LABELS[data.type] || data.type }), " ",
        el("a", { href: safeUrl(c.url), text: c.reference }),
        " · " + c.reporting_org + " · " + seizures.length + " seizure" + (seizures.length !== 1 ? "s" : "") +
        " (" + seizures.map(function (s) { return s.commodity_code; }).join(", ") + ") · " +
        thousands(c.total_pieces) + " pieces · " + c.channel + (c.is_ecommerce ? " · e-com" : "") + " ",
        el("span", { className: "status " + c.status, text: c.status }));
    } else if (data.type === "alert.published" && data.alert) {
      var a = data.alert;
      parts.push(el("b", { text: "Alert" }), " ", el("a", { href: safeUrl(a.url), text: a.title }),
        " · from " + a.sender_org + " · " + String(a.kind).replace(/_/g, " ") +
        (a.attachments ? " · " + a.attachments + " file" + (a.attachments !== 1 ? "s" : "") : ""));
    } else if (data.type === "alert.acknowledged" && data.alert) {
      parts.push(el("b", { text: "Acknowledged" }), " ", el("a", { href: safeUrl(data.alert.url), text: data.alert.title }),
        " by " + data.org + " · " + data.pending + " pending");
    } else if (kind === "message" && data.message) {
      var m = data.message;
      var mentioned = user && (m.mentions || []).indexOf(Number(user)) >= 0;
      parts.push(el("b", { text: mentioned ? "You were mentioned" : "Message" }), " ",
        el("a", { href: safeUrl(m.url), text: m.thread_title }),
        " · " + m.author + " (" + m.author_org + "): " + m.excerpt);
    } else {
      parts.push(el("b", { text: data.type }));
    }
    return el("li", {
      className: "live-event live-new " + kind, "data-event-id": String(data.id), "data-type": data.type
    }, parts);
  }

  function say(status, text) {
    if (!status) {
      var main = document.querySelector("main");
      if (!main) { return; }
      status = el("p", { id: "live-status", className: "notice", role: "status", "aria-live": "polite" });
      var count = document.getElementById("count");
      if (count && count.parentNode) { count.parentNode.insertBefore(status, count); }
      else { main.insertBefore(status, main.firstChild); }
    }
    status.textContent = text;
    status.hidden = false;
  }

  function start() {
    var cfg = config();
    if (!cfg || typeof window.EventSource !== "function") { return; }
    var list = document.getElementById("live-events");
    var empty = document.getElementById("live-empty");
    var seen = 0;
    var others = 0;
    if (list) {
      Array.prototype.forEach.call(list.querySelectorAll("[data-event-id]"), function (li) {
        seen = Math.max(seen, Number(li.getAttribute("data-event-id")) || 0);
      });
    }
    var query = new URLSearchParams(cfg.query);
    if (cfg.cursor) { query.set("last_event_id", cfg.cursor); }
    var url = "/api/v1/operations/" + encodeURIComponent(cfg.op) + "/feed" + (query.toString() ? "?" + query : "");
    var source = new EventSource(url);
    function status() { return document.getElementById("live-status"); }
    document.documentElement.setAttribute("data-live", "connecting");

    source.onopen = function () {
      document.documentElement.setAttribute("data-live", "open");
      if (list) { say(status(), "Live: new activity appears here as it happens."); }
    };
    source.onerror = function () {
      document.documentElement.setAttribute("data-live", "reconnecting");
      if (list) { say(status(), "Reconnecting to the live feed…"); }
    };

    function handle(ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data.type === "reset") {
        say(status(), "Some activity could not be replayed: reload the page to see everything.");
        return;
      }
      if (typeof data.id === "number") {
        if (data.id <= seen) { return; }  // already on the page
        seen = data.id;
      }
      if (list) {
        list.insertBefore(eventItem(data, cfg.user), list.firstChild);
        if (empty) { empty.hidden = true; }
      }
      if (data.case && (document.getElementById("cases") || document.getElementById("empty")) && !list) {
        updateCaseList(data);
      } else if (!list && !document.getElementById("dashboard")) {  /* dashboard.js refreshes itself */
        others += 1;
        say(status(), others + " new update" + (others > 1 ? "s" : "") + " since this page was loaded: reload to see " + (others > 1 ? "them" : "it") + ".");
      }
      document.dispatchEvent(new CustomEvent("stopnet:live", { detail: data }));
    }
    TYPES.forEach(function (t) { source.addEventListener(t, handle); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
