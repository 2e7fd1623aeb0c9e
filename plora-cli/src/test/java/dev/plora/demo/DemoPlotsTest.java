package dev.plora.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Paint;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.plot.XYPlot;
import org.junit.jupiter.api.Test;

class DemoPlotsTest {
  private static List<RunResult> runs() {
    List<RunResult> runs = new ArrayList<>();
    int k = 0;
    for (Method m : Method.values()) {
      k++;
      long[] steps = {0, 100, 200};
      double[] curve = {0.035, 0.02 / k, 0.01 / k};
      double[] spectrum = {1.0, 0.5 / k, 0.1 / k};
      runs.add(new RunResult(m, 8, 100, 0.1f, 1e-3, List.of(), 0.035, 0.01 / k, 1, 8, 8, 1024, 1, 1, steps, curve,
          spectrum));
    }
    return runs;
  }

  @Test
  void aMethodHasOneColourInEveryPlotAndMethodsDiffer() {
    Map<String, Paint> seen = new HashMap<>();
    for (JFreeChart chart : List.of(DemoPlots.lossChart(runs()), DemoPlots.spectrumChart(runs(), new double[] {1, 0.5}))) {
      XYPlot plot = chart.getXYPlot();
      for (int s = 0; s < plot.getDataset().getSeriesCount(); s++) {
        String key = plot.getDataset().getSeriesKey(s).toString();
        Paint paint = plot.getRenderer().getSeriesPaint(s);
        Paint before = seen.putIfAbsent(key, paint);
        if (before != null) {
          assertEquals(before, paint, key + " has different colours in the two plots");
        }
      }
    }
    assertEquals(Method.values().length + 1, new HashSet<>(seen.values()).size(), "every series its own colour: " + seen);
    assertNotEquals(DemoPlots.color(Method.PLORA_FULL), DemoPlots.color(Method.RELORA));
  }

  @Test
  void logAxesTickAtWholeDecadesWithNumbers() {
    JFreeChart chart = DemoPlots.lossChart(runs());
    LogAxis axis = (LogAxis) chart.getXYPlot().getRangeAxis();
    assertEquals(1.0, axis.getTickUnit().getSize(), "ticks one decade apart");
    assertEquals("1E-3", axis.getNumberFormatOverride().format(1e-3));
    assertTrue(axis.getLowerBound() <= 0.01 / Method.values().length && axis.getUpperBound() >= 0.035,
        "the range holds every point: " + axis.getRange());
    BufferedImage image = chart.createBufferedImage(300, 200); // renders without error, headless
    assertEquals(300, image.getWidth());
  }
}
