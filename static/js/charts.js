// Draws the leaderboard's Plotly charts from the figures the server embedded as JSON data blocks
// (leaderboard/charts.py), so that no inline script is needed.
"use strict";

document.querySelectorAll(".plotly-chart").forEach(function (target) {
  const block = target.querySelector('script[type="application/json"]');
  const figure = JSON.parse(block.textContent);
  block.remove();
  Plotly.newPlot(target, figure.data, figure.layout, figure.config);
});
