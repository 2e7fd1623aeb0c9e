package dev.plora.demo;

import dev.plora.io.AtomicFiles;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.SeriesRenderingOrder;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/** loss.png and spectrum.png, drawn with JFreeChart (headless). */
public final class DemoPlots {
  private static final Color[] COLORS = {new Color(0x33, 0x33, 0x33), new Color(0x1f, 0x77, 0xb4),
      new Color(0xd6, 0x27, 0x28), new Color(0x2c, 0xa0, 0x2c), new Color(0xff, 0x7f, 0x0e), new Color(0x94, 0x67, 0xbd)};

  private DemoPlots() {}

  /** Validation loss against step for every run (log scale). */
  public static void writeLoss(Path file, List<RunResult> runs) throws IOException {
    XYSeriesCollection data = new XYSeriesCollection();
    for (RunResult r : runs) {
      XYSeries s = new XYSeries(r.method().reportName());
      for (int i = 0; i < r.curve().length; i++) {
        if (r.curve()[i] > 0 && Double.isFinite(r.curve()[i])) {
          s.add(r.curveSteps()[i], r.curve()[i]);
        }
      }
      data.addSeries(s);
    }
    JFreeChart chart = ChartFactory.createXYLineChart("Validation loss (same steps and batch size)", "step",
        "validation MSE", data, PlotOrientation.VERTICAL, true, false, false);
    logRange(chart, "validation MSE (log)");
    write(file, chart);
  }

  /** Singular values of layer 0's ΔW for every run, and of the target update (log scale). */
  public static void writeSpectrum(Path file, List<RunResult> runs, double[] target) throws IOException {
    XYSeriesCollection data = new XYSeriesCollection();
    XYSeries t = new XYSeries("target update");
    for (int i = 0; i < target.length; i++) {
      t.add(i + 1, target[i]);
    }
    data.addSeries(t);
    for (RunResult r : runs) {
      XYSeries s = new XYSeries(r.method().reportName());
      double max = r.spectrum()[0];
      for (int i = 0; i < r.spectrum().length; i++) {
        if (r.spectrum()[i] > 1e-6 * max) { // below that is rounding noise
          s.add(i + 1, r.spectrum()[i]);
        }
      }
      data.addSeries(s);
    }
    JFreeChart chart = ChartFactory.createXYLineChart("Singular values of the learned update ΔW (layer 0)", "index",
        "singular value", data, PlotOrientation.VERTICAL, true, false, false);
    logRange(chart, "singular value (log)");
    // LoRA's few values sit under the others' first ones: mark them, and dash ReLoRA, whose
    // spectrum follows PLoRA-full's closely
    XYLineAndShapeRenderer renderer = (XYLineAndShapeRenderer) chart.getXYPlot().getRenderer();
    for (int i = 0; i < runs.size(); i++) {
      if (runs.get(i).method() == Method.LORA) {
        renderer.setSeriesShapesVisible(i + 1, true);
      }
      if (runs.get(i).method() == Method.RELORA) {
        renderer.setSeriesStroke(i + 1, new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f,
            new float[] {6f, 6f}, 0f));
      }
    }
    write(file, chart);
  }

  private static void logRange(JFreeChart chart, String label) {
    XYPlot plot = chart.getXYPlot();
    LogAxis axis = new LogAxis(label);
    axis.setSmallestValue(1e-8);
    plot.setRangeAxis(axis);
    plot.setSeriesRenderingOrder(SeriesRenderingOrder.FORWARD); // later series on top
    plot.setBackgroundPaint(Color.WHITE);
    plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
    plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, false);
    for (int i = 0; i < plot.getDataset().getSeriesCount(); i++) {
      renderer.setSeriesPaint(i, COLORS[i % COLORS.length]);
      renderer.setSeriesStroke(i, new BasicStroke(2f));
    }
    plot.setRenderer(renderer);
  }

  private static void write(Path file, JFreeChart chart) throws IOException {
    ByteArrayOutputStream png = new ByteArrayOutputStream();
    ChartUtils.writeChartAsPNG(png, chart, 900, 560);
    AtomicFiles.write(file, png.toByteArray(), true);
  }
}
