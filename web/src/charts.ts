// Small inline SVG charts. Each has a text alternative (role="img" + aria-label); the numbers
// they draw are also in a table beside them.

const SVG = "http://www.w3.org/2000/svg";

function svg(width: number, height: number, label: string): SVGSVGElement {
  const root = document.createElementNS(SVG, "svg");
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  root.setAttribute("width", "100%");
  root.setAttribute("role", "img");
  root.setAttribute("aria-label", label);
  root.classList.add("chart");
  return root;
}

function element(name: string, attributes: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Bars of counts per class, coloured like the map's classes. */
export function classHistogram(counts: number[], colours: string[], labels: string[], label: string): SVGSVGElement {
  const width = 240, height = 70, gap = 2;
  const root = svg(width, height, label);
  const max = Math.max(1, ...counts);
  const barWidth = (width - gap * (counts.length - 1)) / counts.length;
  counts.forEach((count, index) => {
    const barHeight = (count / max) * (height - 14);
    const x = index * (barWidth + gap);
    const bar = element("rect", { x, y: height - 12 - barHeight, width: barWidth, height: barHeight,
      fill: colours[index], stroke: "#333", "stroke-width": 0.5 });
    bar.append(element("title", {}, `${labels[index]}: ${count}`));
    root.append(bar, element("text", { x: x + barWidth / 2, y: height - 2, "text-anchor": "middle",
      "font-size": 9 }, String(count)));
  });
  return root;
}

/** A line of a series (e.g. the relative gap per iteration), on a log scale when asked. */
export function sparkline(values: number[], label: string, logScale = false): SVGSVGElement {
  const width = 240, height = 50;
  const root = svg(width, height, label);
  const points = values.filter((v) => Number.isFinite(v) && (!logScale || v > 0))
    .map((v) => (logScale ? Math.log10(v) : v));
  if (points.length < 2) return root;
  const min = Math.min(...points), max = Math.max(...points);
  const span = max - min || 1;
  const path = points.map((v, i) => `${(i / (points.length - 1)) * (width - 4) + 2},${height - 4 - ((v - min) / span) * (height - 8)}`);
  root.append(element("polyline", { points: path.join(" "), fill: "none", stroke: "#2a788e", "stroke-width": 2 }));
  return root;
}

/** Horizontal bars of relative change (%), left = decrease (purple), right = increase (orange). */
export function changeBars(rows: { name: string; percent: number | null }[], label: string): SVGSVGElement {
  const rowHeight = 16, width = 240, labelWidth = 118;
  const half = (width - labelWidth) / 2 - 2, middle = labelWidth + 2 + half;
  const root = svg(width, rows.length * rowHeight + 4, label);
  const largest = Math.max(1, ...rows.map((r) => Math.abs(r.percent ?? 0)));
  rows.forEach((row, index) => {
    const y = index * rowHeight + 2;
    root.append(element("text", { x: labelWidth - 4, y: y + 11, "text-anchor": "end", "font-size": 9 },
      row.name.length > 22 ? `${row.name.slice(0, 21)}…` : row.name));
    const percent = row.percent ?? 0;
    const length = (Math.abs(percent) / largest) * half;
    const x = percent < 0 ? middle - length : middle;
    const bar = element("rect", { x, y: y + 2, width: Math.max(length, 0.5), height: rowHeight - 5,
      fill: percent < 0 ? "#542788" : "#b35806" });
    bar.append(element("title", {}, `${row.name}: ${row.percent === null ? "n/a" : `${percent.toFixed(1)} %`}`));
    root.append(bar);
  });
  root.append(element("line", { x1: middle, x2: middle, y1: 0, y2: rows.length * rowHeight + 4, stroke: "#333" }));
  return root;
}
