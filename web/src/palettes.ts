// Colour-blind-safe palettes (viridis; ColorBrewer YlGnBu and PuOr), class breaks and legends.
// Each class is also told apart by line width or by its label, never by hue alone.

export const VIRIDIS_6 = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"];
export const YLGNBU_6 = ["#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494"];
/** Diverging PuOr: purple = less in B than in A, orange = more; the middle class is "no change". */
export const PUOR_7 = ["#542788", "#998ec3", "#d8daeb", "#f7f7f7", "#fee0b6", "#f1a340", "#b35806"];
export const NO_DATA = "#9aa0a6";

export interface Classes {
  /** Lower bound of each class after the first (length = colours.length - 1). */
  breaks: number[];
  colours: string[];
  labels: string[];
  title: string;
}

export function niceNumber(value: number): number {
  if (value <= 0) return 0;
  const exponent = Math.floor(Math.log10(value));
  const fraction = value / 10 ** exponent;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
  return nice * 10 ** exponent;
}

export function format(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6) return `${(value / 1e6).toFixed(1)} M`;
  if (magnitude >= 1e4) return `${Math.round(value / 1e3)} k`;
  if (magnitude >= 100) return Math.round(value).toLocaleString("en");
  if (magnitude >= 1) return value.toFixed(1).replace(/\.0$/, "");
  if (magnitude === 0) return "0";
  return value.toPrecision(2);
}

/** Equal-width classes with nice bounds from 0 to the maximum. */
export function sequentialClasses(values: number[], colours: string[], title: string): Classes {
  const max = Math.max(0, ...values.filter(Number.isFinite));
  const step = niceNumber(max / colours.length) || 1;
  const breaks = colours.slice(1).map((_, index) => step * (index + 1));
  const labels = colours.map((_, index) =>
    index === 0 ? `< ${format(breaks[0])}` : index === colours.length - 1
      ? `≥ ${format(breaks[index - 1])}` : `${format(breaks[index - 1])} – ${format(breaks[index])}`);
  return { breaks, colours, labels, title };
}

/** Volume/capacity with fixed, meaningful bounds (1.0 = at capacity). */
export function volumeCapacityClasses(): Classes {
  const breaks = [0.5, 0.75, 0.9, 1.0, 1.25];
  return {
    breaks, colours: VIRIDIS_6, title: "Volume / capacity",
    labels: ["< 0.5", "0.5 – 0.75", "0.75 – 0.9", "0.9 – 1.0", "1.0 – 1.25", "≥ 1.25 (over capacity)"],
  };
}

/** Symmetric classes around zero; changes under 1% of the largest change count as none. */
export function divergingClasses(values: number[], title: string): Classes {
  const largest = niceNumber(Math.max(1e-9, ...values.filter(Number.isFinite).map(Math.abs)));
  const small = largest * 0.01;
  const mid = largest * 0.15;
  const high = largest * 0.5;
  const breaks = [-high, -mid, -small, small, mid, high];
  const labels = [`≤ −${format(high)}`, `−${format(high)} – −${format(mid)}`, `−${format(mid)} – −${format(small)}`,
    "no change", `+${format(small)} – +${format(mid)}`, `+${format(mid)} – +${format(high)}`, `≥ +${format(high)}`];
  return { breaks, colours: PUOR_7, labels, title };
}

/** A MapLibre `step` expression over `input`, grey where the value is missing. */
export function stepExpression(input: unknown[], classes: Classes): unknown[] {
  const expression: unknown[] = ["step", ["coalesce", input, -1e12], NO_DATA, -1e11, classes.colours[0]];
  classes.breaks.forEach((bound, index) => expression.push(bound, classes.colours[index + 1]));
  return expression;
}

export function renderLegend(container: HTMLElement, classes: Classes | null, note = ""): void {
  container.replaceChildren();
  if (!classes) {
    container.hidden = true;
    return;
  }
  container.hidden = false;
  const title = document.createElement("h3");
  title.textContent = classes.title;
  const list = document.createElement("ul");
  classes.colours.forEach((colour, index) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, document.createTextNode(classes.labels[index]));
    list.append(item);
  });
  container.append(title, list);
  if (note) {
    const extra = document.createElement("p");
    extra.textContent = note;
    container.append(extra);
  }
}
