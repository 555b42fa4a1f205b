// Draws each chart from the JSON beside it with uPlot (vendored: uPlot.iife.min.js, MIT).
// The tables on every page carry the same figures, so the page reads without JavaScript too.
"use strict";
(function () {
  var COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700"];
  function draw(el) {
    var spec = JSON.parse(document.getElementById(el.dataset.chart).textContent);
    if (!spec.x.length) {
      el.textContent = "No data yet.";
      return;
    }
    var scales = {x: {time: true}}, axes = [{}], series = [{}], data = [spec.x];
    spec.series.forEach(function (s, i) {
      var scale = s.scale || "y";
      if (!scales[scale]) {
        scales[scale] = {auto: true};
        axes.push({scale: scale, side: axes.length === 1 ? 3 : 1, grid: {show: axes.length === 1}});
      }
      series.push({label: s.label, scale: scale, stroke: COLOURS[i % COLOURS.length], width: 2,
                   spanGaps: true, paths: s.step ? uPlot.paths.stepped({align: 1}) : undefined});
      data.push(s.values);
    });
    new uPlot({width: Math.max(el.clientWidth, 320), height: 260, scales: scales, axes: axes, series: series},
              data, el);
  }
  document.querySelectorAll(".plot[data-chart]").forEach(draw);
})();
