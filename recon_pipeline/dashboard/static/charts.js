/* Draws the page's charts: each <div data-chart> carries an ECharts option as JSON
   (recon_pipeline/dashboard/charts.py). Tooltips and axes are formatted here; every name
   shown in a tooltip is HTML-escaped (a customer may be called "<img onerror=...>"). */
(function () {
  "use strict";
  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function fixed(value, digits) {
    return Number(value).toLocaleString("zh-CN", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  var formats = {
    yuan: function (v) { return v == null ? "—" : (v < 0 ? "-¥" : "¥") + fixed(Math.abs(v), 2); },
    wan: function (v) { return v == null ? "—" : fixed(v / 10000, 2) + "万"; },
    percent: function (v) { return v == null ? "—" : fixed(v * 100, 1) + "%"; },
    number: function (v) { return v == null ? "—" : fixed(v, Number.isInteger(v) ? 0 : 2); },
    count: function (v) { return v == null ? "—" : fixed(v, 0) + " 单"; },
  };
  formats.funnel = formats.count;

  function tooltip(spec) {
    var show = formats[spec.format] || formats.number;
    return function (params) {
      var list = Array.isArray(params) ? params : [params];
      var head = list.length && list[0].axisValueLabel != null ? esc(list[0].axisValueLabel) + "<br>" : "";
      return head + list.map(function (p) {
        var text = (p.seriesName && list.length > 1 || !head ? esc(p.seriesName || p.name) : esc(p.name)) + "：" + show(p.value);
        if (spec.format === "funnel") {
          text = esc(p.name) + "：" + show(p.value) + "，" + formats.yuan(p.data && p.data.amount);
        }
        return p.marker + text;
      }).join("<br>");
    };
  }

  function draw(el) {
    var spec = JSON.parse(el.getAttribute("data-chart"));
    var option = spec.option;
    option.animation = false;
    option.tooltip = Object.assign({ confine: true }, option.tooltip || {}, { formatter: tooltip(spec) });
    var axis = formats[spec.axis];
    [].concat(option.yAxis || [], option.xAxis || []).forEach(function (a) {
      if (a.type === "value" && axis) { a.axisLabel = Object.assign({}, a.axisLabel || {}, { formatter: axis }); }
    });
    var chart = echarts.init(el, null, { renderer: "svg", locale: "ZH" });
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
    el.setAttribute("data-drawn", "1");
  }

  function drawAll() {
    if (typeof echarts === "undefined") { return; }
    document.querySelectorAll("[data-chart]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
