// Draws the analytics page's charts with Chart.js (served from the installed package at
// /static/chartjs/). Each <canvas data-chart> carries its own JSON spec, written by the server,
// so there is no inline script; the table under each chart holds the same figures.
(() => {
  const ALPHA = 'cc';

  function config(spec) {
    const doughnut = spec.type === 'doughnut';
    const palette = ['#0d6efd', '#198754', '#fd7e14', '#6f42c1', '#dc3545', '#20c997'];
    const datasets = spec.datasets.map((d) => ({
      label: d.label,
      data: d.data,
      // A doughnut colours its slices; bars and lines take the dataset's colour.
      backgroundColor: doughnut
        ? spec.labels.map((_, i) => palette[i % palette.length])
        : d.color + ALPHA,
      borderColor: doughnut ? '#ffffff' : d.color,
      borderWidth: doughnut ? 1 : 2,
      pointRadius: spec.labels.length > 60 ? 0 : 3,
      spanGaps: true,
    }));
    const options = {
      // Figures appear at once (and a reduced-motion setting has nothing to reduce).
      animation: false,
      responsive: true,
      maintainAspectRatio: true,
      aspectRatio: doughnut ? 2.2 : 2,
      plugins: {
        legend: { display: doughnut || datasets.length > 1, position: doughnut ? 'right' : 'top' },
        tooltip: { intersect: false, mode: doughnut ? 'nearest' : 'index' },
      },
    };
    if (!doughnut) {
      options.scales = {
        // Lines keep half a step free at both ends as bars do, so the first and last dates are
        // not cut at the edges, and the dates left out leave room between those shown.
        x: { offset: true, ticks: { autoSkip: true, autoSkipPadding: 12, maxRotation: 0 } },
        y: {
          beginAtZero: true,
          title: { display: Boolean(spec.unit), text: spec.unit ?? '' },
          ticks: { precision: spec.unit === 'hours' ? undefined : 0 },
        },
      };
    }
    return { type: spec.type, data: { labels: spec.labels, datasets }, options };
  }

  function draw() {
    if (!window.Chart) return;
    for (const canvas of document.querySelectorAll('canvas[data-chart]')) {
      try {
        const spec = JSON.parse(canvas.dataset.chart);
        new window.Chart(canvas, config(spec));
        canvas.dataset.drawn = 'true';
      } catch (err) {
        // One bad chart must not keep the others from drawing; the table still has the figures.
        console.warn('chart not drawn', canvas.id, err);
      }
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', draw);
  else draw();
})();
