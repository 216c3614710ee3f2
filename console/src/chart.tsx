// A uPlot chart that fills its container's width. The canvas is hidden from assistive technology: each
// chart has a text alternative (`label`) and the page shows the same numbers as text or a table.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartProps {
  /** The chart's options for a width (the height is fixed by the options). */
  readonly options: (width: number) => uPlot.Options;
  readonly data: uPlot.AlignedData;
  /** What the chart shows, for screen readers. */
  readonly label: string;
  readonly testId?: string;
}

export function Chart({ options, data, label, testId }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const dataRef = useRef(data);
  dataRef.current = data;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = () => Math.max(240, Math.floor(el.clientWidth));
    const chart = new uPlot(options(width()), dataRef.current, el);
    plot.current = chart;
    const observer = new ResizeObserver(() => chart.setSize({ width: width(), height: chart.height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [options]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return (
    <figure class="chart" data-testid={testId}>
      <div ref={box} class="chart-canvas" aria-hidden="true" />
      <figcaption class="visually-hidden">{label}</figcaption>
    </figure>
  );
}
