package dev.plora.cli;

import dev.plora.demo.DemoPlots;
import dev.plora.finetune.FineTuneResult;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.geom.Ellipse2D;
import java.io.IOException;
import java.nio.file.Path;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/** loss.png of a fine-tuning run: the training loss of every step and the evaluations, against step. */
final class FineTunePlot {
  private FineTunePlot() {}

  static void write(Path file, FineTuneResult r) throws IOException {
    XYSeries train = new XYSeries("train loss");
    for (FineTuneResult.StepLoss s : r.losses()) {
      if (Double.isFinite(s.loss())) {
        train.add(s.step(), s.loss());
      }
    }
    XYSeries eval = new XYSeries("eval loss");
    for (FineTuneResult.Eval e : r.evals()) {
      if (Double.isFinite(e.result().loss())) {
        eval.add(e.step(), e.result().loss());
      }
    }
    XYSeriesCollection data = new XYSeriesCollection();
    data.addSeries(train);
    data.addSeries(eval);
    JFreeChart chart = ChartFactory.createXYLineChart("plora finetune (" + r.settings().method().cliName() + ")",
        "step", "mean token loss (nats)", data, PlotOrientation.VERTICAL, true, false, false);
    XYPlot plot = chart.getXYPlot();
    plot.setBackgroundPaint(Color.WHITE);
    plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
    plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    ((org.jfree.chart.axis.NumberAxis) plot.getRangeAxis()).setAutoRangeIncludesZero(false);
    XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, false);
    renderer.setSeriesPaint(0, new Color(0x1f, 0x77, 0xb4));
    renderer.setSeriesStroke(0, new BasicStroke(1.5f));
    renderer.setSeriesPaint(1, new Color(0xd6, 0x27, 0x28));
    renderer.setSeriesStroke(1, new BasicStroke(2f));
    renderer.setSeriesShapesVisible(1, true);
    renderer.setSeriesShape(1, new Ellipse2D.Double(-4, -4, 8, 8));
    plot.setRenderer(renderer);
    DemoPlots.write(file, chart);
  }
}
