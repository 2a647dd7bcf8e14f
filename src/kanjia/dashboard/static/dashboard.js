/* kanjia dashboard: draws the panels from the JSON embedded in the page.
   Text from the data is only ever set with textContent, never parsed as HTML. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("kanjia-data").textContent);
  var meta = data.meta;
  var CUR = meta.currency;
  var SYMBOL = { CNY: "¥", USD: "$" }[CUR] || "";
  var PALETTE = ["#1f4fd1", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf", "#bcbd22", "#008080", "#5b5b9b", "#7f7f7f"];
  var charts = {};
  window.kanjiaCharts = charts;

  Chart.defaults.animation = false;
  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', 'Noto Sans CJK SC', sans-serif";
  Chart.defaults.font.size = 11;
  Chart.defaults.color = "#333";
  Chart.defaults.maintainAspectRatio = false;

  function el(tag, props, children) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        if (k === "text") { node.textContent = props[k]; }
        else if (k === "cls") { node.className = props[k]; }
        else { node.setAttribute(k, props[k]); }
      });
    }
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function money(v) {
    if (v === null || v === undefined) { return "—"; }
    var a = Math.abs(v), digits;
    if (a === 0) { return SYMBOL + "0"; }
    if (a >= 100) { digits = { maximumFractionDigits: 0 }; }
    else if (a >= 1) { digits = { maximumFractionDigits: 2 }; }
    else { digits = { maximumSignificantDigits: 3 }; }
    return (v < 0 ? "−" : "") + SYMBOL + a.toLocaleString("en-US", digits);
  }

  function count(n) { return (n || 0).toLocaleString("en-US"); }
  function pct(x) { return (x * 100).toFixed(x < 0.1 ? 1 : 0) + "%"; }
  function color(i) { return PALETTE[i % PALETTE.length]; }

  function body(id) { return document.querySelector("#panel-" + id + " .body"); }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                "Dec"];
  var MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July",
                     "August", "September", "October", "November", "December"];

  /* a label cut in the middle ("openrouter/meta…instruct:free"): both ends stay readable,
     the full text is in the tooltip */
  function shorten(text, max) {
    text = String(text);
    if (text.length <= max) { return text; }
    var tail = Math.floor((max - 1) / 2), head = max - 1 - tail;
    return text.slice(0, head) + "…" + text.slice(text.length - tail);
  }

  /* how many characters a label may take in a box ``width`` px wide */
  function fits(width, share) { return Math.max(12, Math.floor(width * share / 6.5)); }

  function narrow(node) { return (node || document.body).clientWidth < 560; }

  /* the axis label of a spend bar: two lines, the year always on the second */
  function bucketLabel(key, bucket) {
    var y = key.slice(0, 4), m = Number(key.slice(5, 7)) - 1;
    if (bucket === "month") { return [MONTHS[m], y]; }
    return [MONTHS[m] + " " + Number(key.slice(8, 10)), y];
  }

  function bucketTitle(key, bucket) {
    if (bucket === "month") {
      return MONTH_NAMES[Number(key.slice(5, 7)) - 1] + " " + key.slice(0, 4);
    }
    return bucket === "week" ? "week of Monday " + key : key;
  }

  /* a legend whose long names are shortened, shown in full on hover */
  function shortLegend(max) {
    return {
      labels: { boxWidth: 12, generateLabels: function (chart) {
        var items = Chart.defaults.plugins.legend.labels.generateLabels(chart);
        items.forEach(function (it) { it.full = it.text; it.text = shorten(it.text, max); });
        return items;
      } },
      onHover: function (e, item, legend) { legend.chart.canvas.title = item.full || ""; },
      onLeave: function (e, item, legend) { legend.chart.canvas.title = ""; },
    };
  }

  function empty(id, text) {
    body(id).appendChild(el("p", { cls: "empty", text: text }));
  }

  function canvas(id, name, height) {
    var box = el("div", { cls: "chart" });
    box.style.height = height + "px";  /* CSSOM, which a CSP without unsafe-inline allows */
    var c = el("canvas", { id: "chart-" + name, role: "img", "aria-label": name });
    box.appendChild(c);
    body(id).appendChild(box);
    return c;
  }

  function points(chart) {
    var n = 0;
    chart.data.datasets.forEach(function (d) {
      d.data.forEach(function (v) {
        var y = (v !== null && typeof v === "object") ? v.y : v;
        if (y !== null && y !== undefined && !Number.isNaN(y)) { n += 1; }
      });
    });
    return n;
  }

  function make(name, c, config) {
    var chart = new Chart(c, config);
    charts[name] = chart;
    c.dataset.points = String(points(chart));
    return chart;
  }

  function table(head, rows, cls) {
    var t = el("table", { cls: cls || "" });
    t.appendChild(el("thead", null, [el("tr", null, head.map(function (h) {
      return el("th", { text: h });
    }))]));
    var tb = el("tbody");
    rows.forEach(function (r) {
      tb.appendChild(el("tr", null, r.map(function (cell) {
        if (cell instanceof Node) { return el("td", null, [cell]); }
        return el("td", { text: cell === null || cell === undefined ? "—" : String(cell) });
      })));
    });
    t.appendChild(tb);
    return t;
  }

  function moneyTicks(axis) {
    axis.ticks = axis.ticks || {};
    axis.ticks.callback = function (v) { return money(Number(v)); };
    return axis;
  }

  /* a category tick shortened to fit its share of the box (the tooltip has it in full) */
  function shortTick(box, share) {
    var max = fits(box.clientWidth, share);
    return function (v) { return shorten(this.getLabelForValue(v), max); };
  }

  function tooltipMoney(ctx) {
    var v = ctx.parsed.y !== undefined && ctx.chart.options.indexAxis !== "y" ? ctx.parsed.y
      : ctx.parsed.x;
    return ctx.dataset.label + ": " + money(v);
  }

  /* -- header ---------------------------------------------------------------------------- */
  function header() {
    var span = meta.since + " → " + (meta.until ? meta.until : "today") + " (UTC)";
    var mode = meta.live ? "live from the gateway" : "static report";
    document.getElementById("subtitle").textContent = "Ledger " + meta.database + " · " +
      span + " · " + CUR + " · generated " + meta.generated_at + " · " + mode;
    var since = document.getElementById("since");
    if (since) { since.value = meta.since; }
    var cur = document.getElementById("currency");
    if (cur) { cur.value = CUR; }
    var k = data.kpis, box = document.getElementById("kpis");
    var cards = [
      ["Spend", money(k.spend), count(k.requests) + " requests"],
      ["On " + meta.baseline, money(k.baseline_total), "the same tokens at its prices"],
      ["Saved", money(k.saving), k.baseline_total ? pct(k.saving / k.baseline_total) +
        " of the baseline" : "no baseline cost"],
      ["Fell back", count(k.fallbacks), "answered by a later candidate"],
      ["Failed", count(k.errors), k.requests ? pct(k.errors / k.requests) + " of requests" : ""],
    ];
    cards.forEach(function (c) {
      box.appendChild(el("div", { cls: "kpi" }, [el("div", { cls: "label", text: c[0] }),
        el("div", { cls: "value", text: c[1] }), el("div", { cls: "note", text: c[2] })]));
    });
  }

  /* -- spend over time ------------------------------------------------------------------- */
  function spendPanel() {
    var s = data.spend, bucket = s.bucket || "day";
    if (!s.total) { empty("spend", "No spend in this period."); return; }
    var tabs = el("div", { cls: "tabs" });
    var views = { vendor: s.by_vendor, model: s.by_model };
    var c = null, chart = null;
    function legendAt(width) { return width < 560 ? "bottom" : "right"; }
    function draw(which) {
      var series = views[which], width = body("spend").clientWidth;
      var legend = shortLegend(width < 560 ? fits(width, 0.42) : 28);
      legend.position = legendAt(width);
      var cfg = {
        type: "bar",
        data: {
          labels: s.days.map(function (d) { return bucketLabel(d, bucket); }),
          datasets: series.map(function (x, i) {
            return { label: x.name, data: x.values, backgroundColor: color(i), stack: "spend" };
          }),
        },
        options: {
          scales: { x: { stacked: true, grid: { display: false },
                         ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 10 } },
                    y: moneyTicks({ stacked: true, beginAtZero: true }) },
          plugins: { legend: legend,
                     tooltip: { callbacks: {
                       title: function (items) {
                         return items.length ? bucketTitle(s.days[items[0].dataIndex], bucket)
                           : "";
                       },
                       label: tooltipMoney } } },
          onResize: function (ch, size) {
            var want = legendAt(size.width);
            if (ch.options.plugins.legend.position !== want) {
              ch.options.plugins.legend.position = want;
              ch.update("none");
            }
          },
        },
      };
      if (chart) { chart.destroy(); }
      chart = make("spend", c, cfg);
      c.dataset.bucket = bucket;
      c.dataset.bars = String(s.days.length);
      Array.prototype.forEach.call(tabs.children, function (b) {
        b.classList.toggle("on", b.dataset.view === which);
      });
    }
    ["vendor", "model"].forEach(function (v) {
      var b = el("button", { type: "button", text: "by " + v });
      b.dataset.view = v;
      b.addEventListener("click", function () { draw(v); });
      tabs.appendChild(b);
    });
    body("spend").appendChild(tabs);
    c = canvas("spend", "spend", narrow(body("spend")) ? 400 : 300);
    draw("vendor");
  }

  /* -- savings --------------------------------------------------------------------------- */
  function savingsPanel() {
    var s = data.savings;
    var b = body("savings");
    if (!s.rows.length) { empty("savings", "Nothing priced in this period."); return; }
    var share = s.baseline_total ? " (" + pct(s.saving / s.baseline_total) + ")" : "";
    b.appendChild(el("p", { cls: "headline" }, [
      "Paid ", el("strong", { text: money(s.total) }), "; on " + s.baseline + " the same " +
      "tokens would have cost ", el("strong", { text: money(s.baseline_total) }),
      ": saved ", el("strong", { cls: s.saving >= 0 ? "good" : "bad",
                                 text: money(s.saving) + share }), "."]));
    var who = { routing: "through a route (kanjia chose the model)",
                direct: "named by the client (its own choice)",
                response_cache: "answered from kanjia's response cache (no vendor call)" };
    (s.levers || []).forEach(function (l) {
      b.appendChild(el("p", { cls: "note", text: l.requests + " request(s) " +
        (who[l.lever] || l.lever) + ": paid " + money(l.actual) + ", saved " +
        money(l.saving) + (l.baseline ? " (" + pct(l.saving / l.baseline) + ")" : "") }));
    });
    // the saving against the baseline at list price, split by lever (each part once)
    var split = s.lever_split || {}, names = { routing: "routing", direct: "direct choice",
      off_peak: "off-peak", batch: "batch", prompt_cache: "prompt cache",
      response_cache: "response cache", unexplained: "unexplained" };
    var parts = Object.keys(names).filter(function (k) { return split[k]; })
      .map(function (k) { return names[k] + " " + money(split[k]); });
    if (parts.length) {
      b.appendChild(el("p", { cls: "note", text: "By lever, against " + s.baseline +
        " at list price with nothing cached: " + parts.join(", ") + "." }));
    }
    var rows = s.rows.slice(0, 12);
    make("savings", canvas("savings", "savings", 300), {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.label; }),
        datasets: [
          { label: "paid", data: rows.map(function (r) { return r.actual; }),
            backgroundColor: "#2ca02c" },
          { label: "on " + s.baseline, data: rows.map(function (r) { return r.baseline; }),
            backgroundColor: "#bbbbbb" },
        ],
      },
      options: {
        indexAxis: "y",
        scales: { x: moneyTicks({ beginAtZero: true }),
                  y: { ticks: { autoSkip: false, callback: shortTick(body("savings"), 0.4) } } },
        plugins: { tooltip: { callbacks: { label: tooltipMoney } } },
      },
    });
    var more = s.more_rows ? [s.more_rows + " more model(s) not drawn."] : [];
    more.concat(s.notes.slice(0, 4)).forEach(function (n) {
      b.appendChild(el("p", { cls: "note", text: n }));
    });
    if (s.notes.length > 4) {
      b.appendChild(el("p", { cls: "note", text: (s.notes.length - 4) + " more note(s)." }));
    }
  }

  /* -- routes and fallbacks -------------------------------------------------------------- */
  function routesPanel() {
    var r = data.routes;
    if (!r.routes.length) { empty("routes", "No requests in this period."); return; }
    var rows = r.routes.slice(0, 12);
    function ds(label, key, col) {
      return { label: label, backgroundColor: col, stack: "o",
               data: rows.map(function (x) { return x[key]; }) };
    }
    make("routes", canvas("routes", "routes", 220), {
      type: "bar",
      data: { labels: rows.map(function (x) { return x.route; }),
              datasets: [ds("first choice", "first_try", "#1f4fd1"),
                         ds("after fallback", "after_fallback", "#ff7f0e"),
                         ds("failed", "failed", "#d62728")] },
      options: { indexAxis: "y",
                 scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
                           y: { stacked: true, ticks: { autoSkip: false,
                             callback: shortTick(body("routes"), 0.35) } } } },
    });
    var b = body("routes");
    b.appendChild(el("h3", { text: "Where each route went" }));
    b.appendChild(table(["route", "requests", "served by (requests)"], rows.map(function (x) {
      var chosen = x.chosen.slice(0, 3).map(function (c) {
        return c.model + " (" + count(c.requests) + ")";
      }).join(", ") + (x.chosen.length > 3 ? ", …" : "");
      return [x.route, count(x.requests), chosen || "—"];
    })));
    if (r.error_classes.length) {
      b.appendChild(el("p", { cls: "note", text: "Failures by class: " +
        r.error_classes.map(function (e) { return e.error_class + " " + count(e.requests); })
          .join(", ") }));
    }
    if (data.apis && data.apis.length) {
      b.appendChild(el("h3", { text: "Requests per client API" }));
      b.appendChild(table(["API", "requests", "errors", "tokens", "spend"], data.apis
        .map(function (a) {
          return [a.api, count(a.requests), count(a.errors), count(a.tokens), money(a.amount)];
        }), "small"));
    }
    b.appendChild(el("h3", { text: "Latest fallbacks and failures" }));
    if (!r.recent.length) {
      b.appendChild(el("p", { cls: "empty", text: "None in this period." }));
      return;
    }
    b.appendChild(table(["at (UTC)", "API", "route", "chain tried", "result"],
      r.recent.slice(0, 10).map(function (x) {
        var result = x.status < 400 ? x.status + " · " + x.served_by
          : x.status + " " + (x.error_class || "");
        return [x.at.slice(5, 19).replace("T", " "), x.api || "—", x.route,
                x.attempts.join(" → "),
                el("span", { cls: x.status < 400 ? "pill ok" : "pill bad", text: result })];
      }), "small"));
  }

  /* -- price war ------------------------------------------------------------------------- */
  function isoDay(ms) { return new Date(ms).toISOString().slice(0, 10); }

  /* the cut labels of ``kanjia prices chart`` ("−75%", "free"), drawn below and right of
     each cut of a visible line; a label that would overlap one already drawn moves above
     its point, or is left out (the cuts table below the chart lists every cut) */
  var cutLabels = {
    id: "cutLabels",
    afterDatasetsDraw: function (chart) {
      var g = chart.ctx, area = chart.chartArea, drawn = [];
      g.save();
      g.font = "600 10px " + Chart.defaults.font.family;
      g.textBaseline = "top";
      chart.data.datasets.forEach(function (d, i) {
        if (!chart.isDatasetVisible(i)) { return; }
        var pts = chart.getDatasetMeta(i).data;
        d.cuts.forEach(function (cut) {
          var pt = pts[cut.index];
          if (!pt || Number.isNaN(pt.y)) { return; }
          var w = g.measureText(cut.text).width + 7, h = 12;
          var spots = [[pt.x + 3, pt.y + 3], [pt.x + 3, pt.y - h - 3], [pt.x - w - 3, pt.y + 3]];
          for (var k = 0; k < spots.length; k++) {
            var x = Math.min(spots[k][0], area.right - w), y = spots[k][1];
            if (y < area.top || y + h > area.bottom) { continue; }
            var clash = drawn.some(function (r) {
              return x < r.x + r.w && r.x < x + w && y < r.y + r.h && r.y < y + h;
            });
            if (clash) { continue; }
            g.fillStyle = "rgba(255,255,255,0.85)";
            g.fillRect(x, y, w, h);
            g.fillStyle = d.borderColor;  /* a tick in the line's colour: whose cut it is */
            g.fillRect(x, y + 1, 2, h - 2);
            g.fillStyle = "#222";
            g.fillText(cut.text, x + 4, y + 1);
            drawn.push({ x: x, y: y, w: w, h: h, text: cut.text, model: d.model });
            break;
          }
        });
      });
      g.restore();
      chart.kanjiaCutLabels = drawn;
    },
  };

  function pricesPanel() {
    var p = data.prices, box = body("prices");
    if (!p.series.length) { empty("prices", "No model families in the catalog."); return; }
    var floor = p.floor, top = floor, slim = narrow(box);
    var groups = p.groups || [];
    var freeLines = p.series.filter(function (s) { return s.free_from.length > 0; });
    var hidden = {};
    groups.forEach(function (g) { hidden[g.id] = g.hidden; });
    var datasets = p.series.map(function (s) {
      /* free lines each get their own height inside the "free" band, as in the PNG */
      var i = freeLines.indexOf(s), lift = 1;
      if (i >= 0 && freeLines.length > 1) {
        lift = Math.pow(10, -0.16 + 0.32 * i / (freeLines.length - 1));
      }
      return {
        label: s.label, model: s.model, group: s.group, cuts: s.cuts || [],
        hidden: !!hidden[s.group],
        borderColor: s.color, backgroundColor: s.color,
        borderDash: s.dash, borderWidth: slim ? Math.max(1.2, s.width * 0.75) : s.width,
        stepped: "after", pointRadius: 0, pointHitRadius: 6, spanGaps: false, fill: false,
        data: s.points.map(function (pt) {
          var free = pt[1] === floor;
          if (pt[1] !== null && pt[1] > top) { top = pt[1]; }
          return { x: pt[0], y: pt[1] === null ? null : free ? floor * lift : pt[1],
                   free: free };
        }),
      };
    });
    var chart = make("prices", canvas("prices", "prices", slim ? 380 : 560), {
      type: "line",
      data: { datasets: datasets },
      options: {
        parsing: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", min: p.start, max: p.end,
               afterBuildTicks: function (axis) {
                 /* a tick every quarter, or half-year / year when the chart is narrow */
                 var width = axis.width || axis.chart.width;
                 var step = width < 480 ? 12 : width < 900 ? 6 : 3;
                 var ticks = [], d = new Date(p.start);
                 d = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() -
                   d.getUTCMonth() % step + step, 1));
                 while (d.getTime() <= p.end) {
                   ticks.push({ value: d.getTime() });
                   d = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + step, 1));
                 }
                 axis.ticks = ticks;
               },
               ticks: { maxRotation: 0, callback: function (v) {
                 return new Date(v).toISOString().slice(0, 7);
               } } },
          y: { type: "logarithmic", min: floor / 2.2,
               max: Math.pow(10, Math.ceil(Math.log10(top * 1.05))),
               title: { display: !slim, text: p.currency + " per 1M tokens (log)" },
               afterBuildTicks: function (axis) {
                 var ticks = [{ value: floor }];
                 for (var k = -3; k <= 3; k++) {
                   var v = Math.pow(10, k);
                   if (v > floor * 3 && v <= axis.max * 1.01) { ticks.push({ value: v }); }
                 }
                 axis.ticks = ticks;
               },
               ticks: { callback: function (v) {
                 return Math.abs(v - floor) < floor * 0.01 ? "free" : String(Number(v));
               } } },
        },
        plugins: {
          legend: { display: false },  /* the legend is the group list below the chart */
          tooltip: { callbacks: {
            title: function (items) {
              return items.length ? isoDay(items[0].parsed.x) : "";
            },
            label: function (ctx) {
              var v = ctx.parsed.y;
              return ctx.dataset.label + ": " + (ctx.raw.free ? "free"
                : Number(v.toPrecision(3)) + " " + p.currency);
            },
          } },
        },
      },
      plugins: [{
        id: "freeBand",
        beforeDatasetsDraw: function (ch) {
          var y = ch.scales.y, area = ch.chartArea, g = ch.ctx;
          var hi = y.getPixelForValue(floor * Math.pow(10, 0.22));
          var lo = y.getPixelForValue(floor / Math.pow(10, 0.22));
          g.save();
          g.fillStyle = "#e8f5e9";
          g.fillRect(area.left, hi, area.right - area.left, lo - hi);
          g.restore();
        },
      }, cutLabels],
    });
    if (slim) {
      box.insertBefore(el("p", { cls: "note", text: p.currency + " per 1M tokens, log " +
        "scale" }), box.firstChild);
    }
    box.appendChild(priceLegend(chart, groups, p.series));
    box.appendChild(cutsTable(p));
  }

  /* one button per vendor group: its colour, its name, its lines; a click shows or hides
     the group's lines */
  function priceLegend(chart, groups, series) {
    var list = el("div", { cls: "legend", role: "group", "aria-label": "vendors" });
    groups.forEach(function (g) {
      var lines = series.filter(function (s) { return s.group === g.id; });
      var swatch = el("span", { cls: "swatch" });
      swatch.style.backgroundColor = g.color;
      var models = lines.map(function (s) { return s.family; }).join(", ");
      var b = el("button", { type: "button", cls: "group", title: models,
                             "aria-pressed": g.hidden ? "false" : "true" },
                 [swatch, el("span", { cls: "name", text: g.name }),
                  el("span", { cls: "count", text: lines.length + (lines.length === 1 ?
                    " line" : " lines") })]);
      b.dataset.group = g.id;
      b.classList.toggle("off", !!g.hidden);
      b.addEventListener("click", function () {
        var show = b.getAttribute("aria-pressed") !== "true";
        chart.data.datasets.forEach(function (d, i) {
          if (d.group === g.id) { chart.setDatasetVisibility(i, show); }
        });
        b.setAttribute("aria-pressed", show ? "true" : "false");
        b.classList.toggle("off", !show);
        chart.update("none");
      });
      list.appendChild(b);
    });
    return list;
  }

  /* every cut the chart labels, with its date, model and vendor (newest first) */
  function cutsTable(p) {
    var rows = [];
    p.series.forEach(function (s) {
      (s.cuts || []).forEach(function (cut) {
        var before = null;
        for (var i = cut.index - 1; i >= 0 && before === null; i--) { before = s.points[i][1]; }
        var after = s.points[cut.index][1];
        var shown = function (v) {
          return v === p.floor ? "free" : Number(v.toPrecision(3)) + "";
        };
        rows.push([isoDay(cut.at), s.family, s.vendor,
                   (before === null ? "—" : shown(before)) + " → " + shown(after), cut.text]);
      });
    });
    rows.sort(function (a, b) { return a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0; });
    var more = el("details", { cls: "cuts" }, [
      el("summary", { text: rows.length + " price cuts of half or more (" + p.currency +
        " per 1M tokens)" }),
      table(["date", "model", "vendor", "price", "cut"], rows, "small")]);
    return more;
  }

  /* -- budgets --------------------------------------------------------------------------- */
  function budgetsPanel() {
    var bs = data.budgets, b = body("budgets");
    if (!bs.length) {
      empty("budgets", "No budgets set (kanjia keys create --budget 100CNY/month).");
    } else {
      var rows = bs.slice(0, 15);
      make("budgets", canvas("budgets", "budgets", 60 + 26 * rows.length), {
        type: "bar",
        data: {
          labels: rows.map(function (x) { return x.label + " · " + x.period; }),
          datasets: [{
            label: "used", data: rows.map(function (x) { return x.used * 100; }),
            backgroundColor: rows.map(function (x) {
              return x.used >= 1 ? "#d62728" : x.used >= 0.8 ? "#ff7f0e" : "#2ca02c";
            }),
          }],
        },
        options: {
          indexAxis: "y",
          scales: { x: { beginAtZero: true, suggestedMax: 100,
                         ticks: { callback: function (v) { return v + "%"; } } },
                    y: { ticks: { autoSkip: false, callback: shortTick(b, 0.4) } } },
          plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (ctx) {
            var x = rows[ctx.dataIndex];
            return pct(x.used) + " of " + x.amount + " " + x.currency;
          } } } },
        },
      });
      b.appendChild(table(["budget", "period", "spent", "limit", "resets"], rows.map(function (x) {
        return [x.label + (x.revoked ? " (revoked)" : ""), x.period,
                x.spent.toPrecision(4) + " " + x.currency, x.amount + " " + x.currency,
                x.resets || "never"];
      }), "small"));
    }
    if (data.keys.length) {
      b.appendChild(el("h3", { text: "Spend per key in this period" }));
      b.appendChild(table(["key", "requests", "spend", "charged"], data.keys.slice(0, 15)
        .map(function (k) {
          return [k.name ? k.name + " (" + k.key + ")" : k.key, count(k.requests),
                  money(k.amount), money(k.charge)];
        }), "small"));
    }
  }

  /* -- vendor health --------------------------------------------------------------------- */
  function healthPanel() {
    var h = data.health, b = body("health");
    var vs = h.vendors.slice(0, 20);
    if (vs.length) {
      make("health", canvas("health", "health", 240), {
        type: "bar",
        data: { labels: vs.map(function (v) { return v.vendor; }),
                datasets: [
                  { label: "attempts ok", backgroundColor: "#2ca02c", stack: "a",
                    data: vs.map(function (v) { return v.attempts - v.failed_attempts; }) },
                  { label: "attempts failed", backgroundColor: "#d62728", stack: "a",
                    data: vs.map(function (v) { return v.failed_attempts; }) },
                ] },
        options: { scales: { x: { stacked: true, ticks: { autoSkip: false,
                                                          callback: shortTick(b, 0.3) } },
                             y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
                   plugins: { tooltip: { callbacks: { afterLabel: function (ctx) {
                     var v = vs[ctx.dataIndex];
                     return v.avg_latency_ms !== null ? "mean latency " + v.avg_latency_ms +
                       " ms" : "";
                   } } } } },
      });
    } else {
      empty("health", "No attempts in this period.");
    }
    b.appendChild(el("h3", { text: "Circuit breakers" }));
    if (!h.live) {
      b.appendChild(el("p", { cls: "note", text: "Live breaker states are shown when the " +
        "dashboard is served by the gateway (/ui); a report file has only the ledger." }));
      return;
    }
    var deps = h.live.deployments;
    var open = deps.filter(function (d) { return d.state !== "closed"; }).length;
    b.appendChild(el("p", { cls: "note", text: deps.length + " deployments, " + open +
      " not closed." }));
    b.appendChild(table(["deployment", "state", "reason", "recent failures", "latency (EWMA)"],
      deps.map(function (d) {
        return [d.deployment, el("span", { cls: "pill " + (d.state === "closed" ? "ok" :
          d.state === "half_open" ? "warn" : "bad"), text: d.state }), d.reason || "—",
                d.recent_failures, d.latency_ewma_ms === null ? "—" : d.latency_ewma_ms + " ms"];
      }), "small scroll"));
    var off = Object.keys(h.live.disabled_vendors);
    if (off.length) {
      b.appendChild(el("p", { cls: "note", text: "Configured off: " + off.map(function (v) {
        return v + " (" + h.live.disabled_vendors[v] + ")";
      }).join(", ") }));
    }
  }

  var panels = [header, spendPanel, savingsPanel, routesPanel, pricesPanel, budgetsPanel,
                healthPanel];
  panels.forEach(function (draw) {
    try { draw(); } catch (e) {
      console.error("kanjia dashboard: " + draw.name + ": " + e);
    }
  });
  document.body.dataset.ready = "1";
}());
