package dev.plora.demo;

import dev.plora.io.Json;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What the demos' report.json files share: how numbers are written and how a rate sweep is. */
public final class ReportJson {
  private ReportJson() {}

  /** Six significant digits; a non-finite value (a diverged run) becomes null. */
  public static Object num(double v) {
    return Json.number(v, "%.6g");
  }

  /** A learning-rate sweep, {@code [lr, loss]} pairs, as {@code [{"lr": …, lossKey: …}, …]}. */
  public static List<Object> lrSweep(List<double[]> sweep, String lossKey) {
    return sweep.stream().<Object>map(p -> {
      Map<String, Object> point = new LinkedHashMap<>();
      point.put("lr", num(p[0]));
      point.put(lossKey, num(p[1]));
      return point;
    }).toList();
  }
}
