/* stopnet operation dashboard: draws each panel from its JSON data with the vendored plotly.js.
 *
 * Every chart <div class="chart" data-panel="..."> carries its panel's data as JSON in its data-json
 * attribute (CSP script-src 'self': no inline code; and htmx, with allowScriptTags false, drops <script>
 * blocks from swapped content). This file turns each into a Plotly figure, on page load and again after
 * htmx swaps in the filtered dashboard.
 * The world map's topojson comes from /static (config.topojsonURL): nothing is fetched from elsewhere.
 * Every text of the data is escaped before plotly sees it (plotly reads <a>, <b>, ... in labels and hover
 * texts as markup): a brand typed as <a href="//e.ex">x</a> shows as that text, never as a link. The
 * hover texts use <br> only: plotly draws <b> with a style attribute, which CSP style-src 'self' refuses.
 * The toolbar has no button that sends a chart anywhere (no "Share chart", no cloud link); it downloads
 * a chart as PNG or SVG, made in the browser (CSP img-src allows blob: and data: for that).
 */
(function () {
  "use strict";

  var GROUP_COLOURS = { MED: "#c0392b", IPR: "#0b5394", OTH: "#7d8f1a" };
  var ACCENT = "#0b5394";
  var MUTED = "#9aa5b1";
  var FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#1d2733" };

  function fmt(n) {
    return (n === null || n === undefined) ? "–" : Number(n).toLocaleString("en-GB");
  }

  function pct(x) {
    return (x === null || x === undefined) ? "–" : (x * 100).toFixed(1) + "%";
  }

  /* plotly's pseudo-HTML reads tags and entities in every text: escape them so they show as typed
     (with < escaped no tag can form; plotly decodes &amp; &lt; &gt; but not &quot;, so quotes stay) */
  var ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
  function escapeText(text) {
    return String(text).replace(/[&<>]/g, function (c) { return ENTITIES[c]; });
  }

  /* every string of a panel's data, escaped (numbers, booleans and nulls as they are) */
  function escapeData(value) {
    if (typeof value === "string") { return escapeText(value); }
    if (Array.isArray(value)) { return value.map(escapeData); }
    if (value && typeof value === "object") {
      var out = {};
      Object.keys(value).forEach(function (k) { out[k] = escapeData(value[k]); });
      return out;
    }
    return value;
  }

  /* long category names (escaped) are shortened on the axis, never inside an entity (the hover label
     and the table have them whole) */
  function short(label, max) {
    var chars = String(label).match(/&[#a-z0-9]+;|[\s\S]/gi) || [];  /* an entity counts as one */
    return chars.length > max ? chars.slice(0, max - 1).join("") + "…" : chars.join("");
  }

  function baseLayout(extra) {
    var layout = {
      font: FONT,
      margin: { l: 10, r: 10, t: 10, b: 40 },
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
      showlegend: false,
      hoverlabel: { font: { family: FONT.family } }
    };
    Object.keys(extra || {}).forEach(function (k) { layout[k] = extra[k]; });
    return layout;
  }

  /* a round tick step (1, 2, 2.5 or 5 × 10^k) giving about `ticks` intervals up to `max` */
  function niceStep(max, ticks) {
    if (!(max > 0)) { return 1; }
    var raw = max / (ticks || 5);
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= raw) { return Math.max(1, steps[i] * power); }
    }
    return 10 * power;
  }

  /* a count axis from 0 with round ticks written in full ("1,500", not "1.5k") */
  function countAxis(max, extra) {
    var step = niceStep(max, 5);
    var axis = { range: [0, Math.max(step, Math.ceil(max / step) * step)], dtick: step, tick0: 0, tickformat: ",d" };
    Object.keys(extra || {}).forEach(function (k) { axis[k] = extra[k]; });
    return axis;
  }

  function empty(message) {
    return {
      traces: [],
      layout: baseLayout({
        xaxis: { visible: false },
        yaxis: { visible: false },
        annotations: [{ text: message || "No seizures", showarrow: false, font: { size: 14, color: MUTED } }]
      })
    };
  }

  /* A horizontal bar chart of seizures, largest on top. */
  function bars(rows, opts) {
    rows = rows.filter(function (r) { return r.seizures > 0; });
    if (!rows.length) { return empty(); }
    rows = rows.slice(0, opts.max || 25).reverse();
    var labels = rows.map(function (r) { return short(r.label, 30); });
    var hover = rows.map(function (r) {
      var lines = [r.label, "Seizures: " + fmt(r.seizures) + (r.share !== undefined ? " (" + pct(r.share) + ")" : "")];
      if (r.cases !== null && r.cases !== undefined) { lines.push("Cases: " + fmt(r.cases)); }
      lines.push("Pieces: " + fmt(r.pieces), "Weight: " + fmt(r.weight_kg) + " kg");
      return lines.join("<br>");
    });
    var colours = rows.map(function (r) {
      var prefix = (r.code || "").split("-")[0];
      return opts.byGroup && GROUP_COLOURS[prefix] ? GROUP_COLOURS[prefix] : ACCENT;
    });
    return {
      traces: [{
        type: "bar", orientation: "h", x: rows.map(function (r) { return r.seizures; }), y: labels,
        customdata: rows.map(function (r) { return r.code || ""; }),
        marker: { color: colours }, hovertext: hover, hoverinfo: "text", textposition: "none"
      }],
      layout: baseLayout({
        height: Math.max(220, 26 * rows.length + 60),
        margin: { l: 10, r: 20, t: 10, b: 40 },
        xaxis: { title: { text: "Seizures" }, automargin: true, gridcolor: "#eef2f6" },
        yaxis: { automargin: true }
      })
    };
  }

  var drawers = {
    progression: function (d) {
      var days = d.days || [];
      if (!days.some(function (p) { return p.seizures > 0; })) { return empty(); }
      var x = days.map(function (p) { return p.day; });
      var perDay = Math.max.apply(null, days.map(function (p) { return p.seizures; }));
      var cumulative = Math.max.apply(null, days.map(function (p) { return Math.max(p.cumulative_seizures, p.cumulative_cases); }));
      return {
        traces: [
          { type: "bar", name: "Seizures per day", x: x, y: days.map(function (p) { return p.seizures; }), marker: { color: "#9fc5e8" } },
          { type: "bar", name: "of which e-commerce", x: x, y: days.map(function (p) { return p.ecommerce_seizures; }), marker: { color: ACCENT } },
          { type: "scatter", mode: "lines+markers", name: "Cumulative seizures", x: x, yaxis: "y2",
            y: days.map(function (p) { return p.cumulative_seizures; }), line: { color: "#c0392b", width: 2 } },
          { type: "scatter", mode: "lines", name: "Cumulative cases", x: x, yaxis: "y2",
            y: days.map(function (p) { return p.cumulative_cases; }), line: { color: "#e69138", width: 2, dash: "dot" } }
        ],
        layout: baseLayout({
          height: 340, barmode: "overlay", showlegend: true,
          legend: { orientation: "h", y: 1.12, x: 0 },
          margin: { l: 10, r: 10, t: 30, b: 40 },
          xaxis: { type: "date", tickformat: "%d %b", automargin: true },
          yaxis: countAxis(perDay, { title: { text: "per day" }, automargin: true, gridcolor: "#eef2f6" }),
          yaxis2: countAxis(cumulative, { title: { text: "cumulative" }, overlaying: "y", side: "right", automargin: true, showgrid: false })
        })
      };
    },
    regions: function (d) { return bars(d.rows, {}); },
    "transport-modes": function (d) { return bars(d.rows, {}); },
    channels: function (d) { return bars(d.rows, {}); },
    "detection-methods": function (d) { return bars(d.rows, {}); },
    commodities: function (d) { return bars(d.rows, { byGroup: true, max: 20 }); },
    therapeutic: function (d) { return bars(d.rows, { byGroup: true }); },
    brands: function (d) {
      return bars((d.rows || []).map(function (r) {
        return { label: r.brand, code: "", seizures: r.seizures, pieces: r.pieces, weight_kg: r.weight_kg };
      }), {});
    },
    countries: function (d) {
      var rows = (d.rows || []).filter(function (r) { return r.seizures > 0 && r.iso3; });
      if (!rows.length) { return empty(); }
      var most = Math.max.apply(null, rows.map(function (r) { return r.seizures; }));
      return {
        legend: { min: 0, max: most, label: "seizures" },
        traces: [{
          type: "choropleth", locationmode: "ISO-3",
          locations: rows.map(function (r) { return r.iso3; }),
          customdata: rows.map(function (r) { return r.code; }),
          z: rows.map(function (r) { return r.seizures; }),
          text: rows.map(function (r) {
            return r.label + "<br>Seizures: " + fmt(r.seizures) + "<br>Cases: " + fmt(r.cases) +
              "<br>Pieces: " + fmt(r.pieces);
          }),
          hoverinfo: "text", zmin: 0, zmax: most,
          colorscale: [[0, "#c6dbef"], [0.5, "#4292c6"], [1, "#08306b"]], marker: { line: { color: "#ffffff", width: 0.4 } },
          /* plotly's colour bar sets style attributes, which CSP style-src 'self' refuses: the scale is
             drawn in HTML under the map (colourScale) */
          showscale: false
        }],
        layout: baseLayout({
          height: 400, margin: { l: 0, r: 0, t: 0, b: 0 },
          geo: {
            projection: { type: "natural earth" }, showframe: false, showcoastlines: false,
            showcountries: true, countrycolor: "#c9d1d9", showland: true, landcolor: "#f2f4f6",
            showocean: false, lataxis: { range: [-58, 85] }
          }
        })
      };
    },
    routes: function (d) {
      var rows = d.rows || [];
      if (!rows.length) { return empty("No routes"); }
      var index = {};
      var labels = [];
      var colours = [];
      function node(key, label, colour) {
        if (index[key] === undefined) { index[key] = labels.length; labels.push(label); colours.push(colour); }
        return index[key];
      }
      var source = [], target = [], value = [], text = [], route = [];
      rows.forEach(function (r) {
        source.push(node("o:" + (r.origin || "?"), r.origin_label, "#e69138"));
        target.push(node("d:" + (r.destination || "?"), r.destination_label, ACCENT));
        value.push(r.seizures);
        text.push(r.origin_label + " → " + r.destination_label + "<br>Seizures: " + fmt(r.seizures) +
          "<br>Cases: " + fmt(r.cases));
        route.push((r.origin || "") + ">" + (r.destination || ""));
      });
      return {
        traces: [{
          type: "sankey", arrangement: "snap",
          node: { label: labels, color: colours, pad: 10, thickness: 14, line: { width: 0 } },
          link: { source: source, target: target, value: value, label: text, customdata: route,
            hovertemplate: "%{label}<extra></extra>", color: "rgba(11,83,148,0.25)" }
        }],
        layout: baseLayout({ height: Math.max(320, 18 * labels.length), margin: { l: 10, r: 10, t: 10, b: 10 } })
      };
    },
    trends: function (d) {
      var rows = (d.rows || []).slice(0, 12);
      if (!rows.length) { return empty("Not enough days or seizures to test"); }
      rows = rows.slice().reverse();
      return {
        traces: [{
          type: "bar", orientation: "h",
          x: rows.map(function (r) { return r.rate_ratio; }),
          y: rows.map(function (r) { return (r.flagged ? "▲ " : "") + short(r.label, 34) + " (" + r.dimension + ")"; }),
          marker: { color: rows.map(function (r) { return r.flagged ? "#c0392b" : MUTED; }) },
          hovertext: rows.map(function (r) {
            return r.label + " (" + r.dimension + ")<br>Seizures: " + fmt(r.before) + " before, " +
              fmt(r.after) + " recent<br>Share: " + pct(r.share_before) + " → " + pct(r.share_after) +
              "<br>Rate ratio: " + r.rate_ratio.toFixed(2) + "<br>p = " + r.p_value.toPrecision(2) +
              ", q = " + r.q_value.toPrecision(2);
          }),
          hoverinfo: "text", textposition: "none"
        }],
        layout: baseLayout({
          height: Math.max(220, 26 * rows.length + 60),
          margin: { l: 10, r: 20, t: 10, b: 40 },
          xaxis: { title: { text: "Share of seizures, recent ÷ before" }, type: "log", automargin: true, gridcolor: "#eef2f6" },
          yaxis: { automargin: true },
          shapes: [{ type: "line", x0: 1, x1: 1, yref: "paper", y0: 0, y1: 1, line: { color: "#1d2733", width: 1, dash: "dot" } }]
        })
      };
    }
  };

  /* Toolbar buttons that send a chart off the site, removed from every chart however plotly defaults */
  var OFF_SITE_BUTTONS = ["sendChartToCloud", "sendDataToCloud", "editInChartStudio"];
  var NO_CLOUD = { showSendToCloud: false, showEditInChartStudio: false, showLink: false, plotlyServerURL: "" };

  function svgButton(name) {
    return {
      name: "downloadSvg",
      title: "Download plot as an SVG",
      icon: window.Plotly.Icons.disk || window.Plotly.Icons.camera,
      click: function (gd) { window.Plotly.downloadImage(gd, { format: "svg", filename: "stopnet-" + name }); }
    };
  }

  function drawPanel(chart, topojsonURL) {
    var name = chart.getAttribute("data-panel");
    if (!drawers[name] || typeof window.Plotly === "undefined") { return Promise.resolve(); }
    var figure;
    try {
      figure = drawers[name](escapeData(JSON.parse(chart.getAttribute("data-json"))));
    } catch (e) {
      chart.textContent = "This chart could not be drawn (" + e.message + "); the table below has the figures.";
      return Promise.resolve();
    }
    var config = {
      responsive: true, displaylogo: false, topojsonURL: topojsonURL,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"].concat(OFF_SITE_BUTTONS),
      modeBarButtonsToAdd: [svgButton(name)],
      toImageButtonOptions: { format: "png", filename: "stopnet-" + name }
    };
    Object.keys(NO_CLOUD).forEach(function (k) { config[k] = NO_CLOUD[k]; });
    return window.Plotly.newPlot(chart, figure.traces, figure.layout, config).then(function () {
      if (figure.legend) { colourScale(chart, figure.legend); }
      if (DRILL[name]) {
        chart.classList.add("drill");
        chart.on("plotly_click", function (ev) {
          var point = ev && ev.points && ev.points[0];
          if (!point || !point.customdata) { return; }
          if (DRILL[name] === "route") { drillRoute(String(point.customdata)); }
          else { drillDown(DRILL[name], String(point.customdata)); }
        });
      }
      chart.setAttribute("data-drawn", "true");
    });
  }

  /* Clicking a bar or a country filters the dashboard by it: the panel's filter of the form is set to that
     one value and the form is sent (htmx swaps the dashboard in and pushes the URL). The swapped-in page
     links to the cases behind its figures. */
  var DRILL = {
    regions: "region", countries: "country", commodities: "commodity_code", therapeutic: "commodity_code",
    channels: "channel", routes: "route"
  };

  /* A route ("CN>FR") sets the form's hidden origin and destination fields, then sends the form. */
  function drillRoute(code) {
    var form = document.getElementById("dashboard-filters");
    if (!form) { return; }
    var parts = code.split(">");
    ["origin", "destination"].forEach(function (name, i) {
      var field = form.querySelector('input[type=hidden][name="' + name + '"]');
      if (!field) {
        field = document.createElement("input");
        field.type = "hidden";
        field.name = name;
        form.insertBefore(field, form.querySelector("button[type=submit]"));
      }
      field.value = parts[i] || "";
    });
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  }

  function drillDown(filter, code) {
    var form = document.getElementById("dashboard-filters");
    if (!form) { return; }
    var boxes = form.querySelectorAll('input[type=checkbox][name="' + filter + '"]');
    var found = false;
    Array.prototype.forEach.call(boxes, function (box) {
      box.checked = box.value === code;
      found = found || box.checked;
    });
    if (!found) { return; }
    var details = boxes[0].closest("details.multi");
    if (details) { sayChosen(details); }
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  }

  /* the map's colour scale, under the map: a CSS gradient from its lightest to its darkest colour */
  function colourScale(chart, legend) {
    var box = chart.nextElementSibling;
    if (!box || !box.classList.contains("colour-scale")) {
      box = document.createElement("div");
      box.className = "colour-scale";
      box.setAttribute("aria-label", "colour scale");
      ["colour-scale-min", "colour-scale-bar", "colour-scale-max", "colour-scale-label"].forEach(function (c) {
        var span = document.createElement("span");
        span.className = c;
        box.appendChild(span);
      });
      chart.parentNode.insertBefore(box, chart.nextSibling);
    }
    box.querySelector(".colour-scale-min").textContent = fmt(legend.min);
    box.querySelector(".colour-scale-max").textContent = fmt(legend.max);
    box.querySelector(".colour-scale-label").textContent = legend.label + " per country (darker: more)";
  }

  function drawAll(root) {
    var dashboard = root.id === "dashboard" ? root : root.querySelector("#dashboard");
    if (!dashboard) { return; }
    dashboard.setAttribute("data-drawn", "false");
    var topojsonURL = dashboard.getAttribute("data-topojson-url") || "/static/vendor/plotly-topojson/";
    var charts = dashboard.querySelectorAll(".chart[data-json]");
    var jobs = Array.prototype.map.call(charts, function (chart) { return drawPanel(chart, topojsonURL); });
    Promise.all(jobs).then(function () {
      dashboard.setAttribute("data-drawn", "true");
    }, function (err) {
      dashboard.setAttribute("data-drawn", "error");
      if (window.console) { window.console.error("dashboard:", err); }
    });
  }

  /* live.js dispatches "stopnet:live" for every event of the operation's feed this viewer may see:
   * a new, corrected or validated case reloads the dashboard's figures (the same URL, filters kept)
   * in place, at most once a second, without reloading the page. */
  var pending = null;
  function refreshSoon() {
    if (pending || typeof window.htmx === "undefined") { return; }
    pending = window.setTimeout(function () {
      pending = null;
      if (!document.getElementById("dashboard")) { return; }
      window.htmx.ajax("GET", window.location.pathname + window.location.search, {
        target: "#dashboard", select: "#dashboard", swap: "outerHTML"
      }).then(function () {
        var status = document.getElementById("live-status");
        if (status) { status.textContent = "Live: figures updated at " + new Date().toLocaleTimeString() + "."; }
        /* the server answered with figures still being added up: ask again shortly */
        var fresh = document.getElementById("dashboard");
        if (fresh && fresh.getAttribute("data-fresh") === "false") { refreshSoon(); }
      });
    }, 1000);
  }

  /* a multi-select filter closes when another opens, on a click elsewhere and when the form is sent */
  function closeChoices(except) {
    Array.prototype.forEach.call(document.querySelectorAll("details.multi[open]"), function (d) {
      if (d !== except) { d.removeAttribute("open"); }
    });
  }

  /* the summary of a multi-select says what is chosen: "all", the one name, or "3 chosen" */
  function sayChosen(details) {
    var boxes = details.querySelectorAll("input[type=checkbox]:checked");
    var picked = details.querySelector(".picked");
    if (!picked) { return; }
    if (boxes.length === 0) { picked.textContent = "all"; }
    else if (boxes.length === 1) { picked.textContent = boxes[0].parentNode.textContent.trim(); }
    else { picked.textContent = boxes.length + " chosen"; }
  }

  function start() {
    if (typeof window.Plotly !== "undefined") { window.Plotly.setPlotConfig(NO_CLOUD); }
    document.addEventListener("change", function (ev) {
      var details = ev.target.closest ? ev.target.closest("details.multi") : null;
      if (details) { sayChosen(details); }
    });
    document.addEventListener("click", function (ev) {
      closeChoices(ev.target.closest ? ev.target.closest("details.multi") : null);
    });
    document.addEventListener("submit", function () { closeChoices(null); });
    drawAll(document);
    /* after htmx swapped in the filtered dashboard (outerHTML of #dashboard), draw the new panels */
    document.body.addEventListener("htmx:afterSettle", function () { drawAll(document); });
    document.addEventListener("stopnet:live", function (ev) {
      if (ev.detail && ev.detail.case) { refreshSoon(); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
