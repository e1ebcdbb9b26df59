// The graphs page: series from /api/dashboard/graphs drawn with uPlot (an npm package,
// copied into static/vendor at build time), redrawn at most every 2 s while events arrive.
(() => {
  "use strict";
  const prefix = document.querySelector('meta[name="prefix"]').content;
  const palette = ["#2e7d32", "#c62828", "#0277bd", "#ef6c00", "#6a1b9a", "#00838f", "#9e9d24", "#5d4037", "#546e7a"];
  const charts = {};
  let last = 0;
  let timer = null;

  function draw(name, data) {
    const box = document.getElementById(`chart-${name}`);
    const names = Object.keys(data.series);
    const rows = [data.x, ...names.map((key) => data.series[key])];
    const key = names.join("|");
    if (charts[name] && charts[name].key === key) { charts[name].plot.setData(rows); return; }
    charts[name]?.plot.destroy();
    box.textContent = names.length ? "" : "no data yet";
    if (!names.length) { delete charts[name]; return; }
    const options = {
      width: Math.max(320, box.clientWidth || 560), height: 220,
      series: [{}, ...names.map((label, i) => ({ label, stroke: palette[i % palette.length], width: 2, spanGaps: false }))],
      axes: [{}, { size: 60 }],
    };
    charts[name] = { key, plot: new uPlot(options, rows, box) };
  }

  async function load() {
    last = Date.now();
    const minutes = document.getElementById("minutes").value;
    const response = await fetch(`${prefix}/api/dashboard/graphs?minutes=${minutes}`);
    if (!response.ok) return;
    const data = await response.json();
    for (const name of ["by_state", "by_task", "runtime", "queues"]) draw(name, data[name]);
    document.body.dataset.graphsLoaded = String(last);
  }

  document.addEventListener("live:graphs", () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; load(); }, Math.max(0, 2000 - (Date.now() - last)));
  });
  document.getElementById("minutes").addEventListener("change", () => {
    for (const name of Object.keys(charts)) { charts[name].plot.destroy(); delete charts[name]; }
    load();
  });
  load();
})();
