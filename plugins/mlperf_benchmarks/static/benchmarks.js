// Draws the server-rendered Plotly figures (JSON in each chart's data-figure attribute) with the plotly.js the
// plugin serves from the pinned `plotly` wheel. No data is fetched here and nothing is written to the DOM as HTML.
(function () {
  "use strict";
  function draw() {
    if (typeof window.Plotly === "undefined") {
      document.querySelectorAll(".bm-chart[data-figure]").forEach(function (el) {
        el.textContent = "The charting library could not be loaded.";
      });
      return;
    }
    var base = document.body.getAttribute("data-base") || "";
    document.querySelectorAll(".bm-chart[data-figure]").forEach(function (el) {
      var fig;
      try { fig = JSON.parse(el.getAttribute("data-figure")); } catch (e) { el.textContent = "Invalid figure data."; return; }
      window.Plotly.newPlot(el, fig.data, fig.layout, {
        responsive: true, displaylogo: false,
        modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"]
      }).then(function () { el.setAttribute("data-rendered", "true"); });
      el.on("plotly_click", function (ev) {
        var point = ev && ev.points && ev.points[0];
        if (point && typeof point.customdata === "string") {
          window.location.href = base + "/runs/" + encodeURIComponent(point.customdata);
        }
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
