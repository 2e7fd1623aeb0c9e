package dev.plora.demo;

import dev.plora.io.AtomicFiles;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.geom.Ellipse2D;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.util.List;
import java.util.Locale;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.SeriesRenderingOrder;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * loss.png and spectrum.png, drawn with JFreeChart (headless). Each method has one colour and one
 * line style in every plot; methods whose curves run together are told apart by dashes and marks.
 */
public final class DemoPlots {
  private static final Color TARGET = new Color(0x99, 0x99, 0x99);

  private DemoPlots() {}

  /** One method's line in a plot. */
  public record Series(Method method, double[] x, double[] y) {}

  /** Validation loss against step for every run (log scale). */
  public static void writeLoss(Path file, List<RunResult> runs) throws IOException {
    write(file, lossChart(runs));
  }

  /** Singular values of layer 0's ΔW for every run, and of the target update (log scale). */
  public static void writeSpectrum(Path file, List<RunResult> runs, double[] target) throws IOException {
    write(file, spectrumChart(runs, target));
  }

  static JFreeChart lossChart(List<RunResult> runs) {
    List<Series> series = runs.stream().map(r -> new Series(r.method(),
        java.util.Arrays.stream(r.curveSteps()).asDoubleStream().toArray(), r.curve())).toList();
    return lossChart("Validation loss (same steps and batch size)", "validation MSE", series);
  }

  static JFreeChart spectrumChart(List<RunResult> runs, double[] target) {
    List<Series> series = runs.stream().map(r -> new Series(r.method(), null, r.spectrum())).toList();
    return spectrumChart("Singular values of the learned update ΔW (layer 0)", series, "target update", target);
  }

  /** {@code y} against step for every series, on a log axis labelled {@code yLabel}. */
  public static JFreeChart lossChart(String title, String yLabel, List<Series> series) {
    XYSeriesCollection data = new XYSeriesCollection();
    for (Series r : series) {
      XYSeries s = new XYSeries(r.method().reportName());
      for (int i = 0; i < r.y().length; i++) {
        if (r.y()[i] > 0 && Double.isFinite(r.y()[i])) {
          s.add(r.x()[i], r.y()[i]);
        }
      }
      data.addSeries(s);
    }
    JFreeChart chart = ChartFactory.createXYLineChart(title, "step", yLabel, data, PlotOrientation.VERTICAL, true,
        false, false);
    XYLineAndShapeRenderer renderer = logRange(chart, yLabel + " (log)");
    for (int i = 0; i < series.size(); i++) {
      style(renderer, i, series.get(i).method());
    }
    return chart;
  }

  /**
   * Each series' singular values (its {@code y}, largest first) against their index on a log axis,
   * after a grey reference line {@code target} named {@code targetName} when it is not null.
   */
  public static JFreeChart spectrumChart(String title, List<Series> series, String targetName, double[] target) {
    XYSeriesCollection data = new XYSeriesCollection();
    int offset = 0;
    if (target != null) {
      XYSeries t = new XYSeries(targetName);
      for (int i = 0; i < target.length; i++) {
        t.add(i + 1, target[i]);
      }
      data.addSeries(t);
      offset = 1;
    }
    for (Series r : series) {
      XYSeries s = new XYSeries(r.method().reportName());
      double max = r.y()[0];
      for (int i = 0; i < r.y().length; i++) {
        if (r.y()[i] > 1e-6 * max) { // below that is rounding noise
          s.add(i + 1, r.y()[i]);
        }
      }
      data.addSeries(s);
    }
    JFreeChart chart = ChartFactory.createXYLineChart(title, "index", "singular value", data, PlotOrientation.VERTICAL,
        true, false, false);
    XYLineAndShapeRenderer renderer = logRange(chart, "singular value (log)");
    if (target != null) {
      renderer.setSeriesPaint(0, TARGET);
      renderer.setSeriesStroke(0, new BasicStroke(3f));
    }
    for (int i = 0; i < series.size(); i++) {
      style(renderer, i + offset, series.get(i).method());
    }
    return chart;
  }

  /** The colour of a method, the same in every plot. */
  static Color color(Method method) {
    return switch (method) {
      case FULL -> new Color(0x33, 0x33, 0x33);
      case LORA -> new Color(0x1f, 0x77, 0xb4);
      case PLORA_FULL -> new Color(0xd6, 0x27, 0x28);
      case PLORA_MOMENTUM -> new Color(0x2c, 0xa0, 0x2c);
      case RELORA -> new Color(0xff, 0x7f, 0x0e);
    };
  }

  private static void style(XYLineAndShapeRenderer renderer, int series, Method method) {
    renderer.setSeriesPaint(series, color(method));
    if (method == Method.RELORA) { // follows PLoRA-full closely: dashed, so both stay visible
      renderer.setSeriesStroke(series, new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f,
          new float[] {7f, 5f}, 0f));
    } else {
      renderer.setSeriesStroke(series, new BasicStroke(2f));
    }
    if (method == Method.LORA) { // a few points under the others' first ones: marked
      renderer.setSeriesShapesVisible(series, true);
      renderer.setSeriesShape(series, new Ellipse2D.Double(-3, -3, 6, 6));
    }
  }

  /**
   * A log range axis with ticks at whole decades, labelled as numbers (1E-3), over whole decades
   * around the data: fractional exponents such as 10^-1.4 are unreadable.
   */
  private static XYLineAndShapeRenderer logRange(JFreeChart chart, String label) {
    XYPlot plot = chart.getXYPlot();
    LogAxis axis = new LogAxis(label);
    axis.setSmallestValue(1e-12);
    double low = Double.POSITIVE_INFINITY, high = 0;
    for (int s = 0; s < plot.getDataset().getSeriesCount(); s++) {
      for (int i = 0; i < plot.getDataset().getItemCount(s); i++) {
        double y = plot.getDataset().getYValue(s, i);
        low = Math.min(low, y);
        high = Math.max(high, y);
      }
    }
    if (high > 0) { // a hair beyond the decades, so that rounding does not drop their end ticks
      axis.setRange(Math.pow(10, Math.floor(Math.log10(low))) * 0.999, Math.pow(10, Math.ceil(Math.log10(high))) * 1.001);
    }
    axis.setTickUnit(new NumberTickUnit(1.0), false, true);
    axis.setNumberFormatOverride(new DecimalFormat("0.#E0", DecimalFormatSymbols.getInstance(Locale.ROOT)));
    axis.setMinorTickCount(9);
    axis.setMinorTickMarksVisible(true);
    plot.setRangeAxis(axis);
    plot.setSeriesRenderingOrder(SeriesRenderingOrder.FORWARD); // later series on top
    plot.setBackgroundPaint(Color.WHITE);
    plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
    plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, false);
    plot.setRenderer(renderer);
    return renderer;
  }

  /** A chart as a 900×560 PNG, written atomically. */
  public static void write(Path file, JFreeChart chart) throws IOException {
    ByteArrayOutputStream png = new ByteArrayOutputStream();
    ChartUtils.writeChartAsPNG(png, chart, 900, 560);
    AtomicFiles.write(file, png.toByteArray(), true);
  }
}
