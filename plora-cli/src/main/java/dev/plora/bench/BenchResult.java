package dev.plora.bench;

import dev.plora.io.Json;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One benchmark's timings in milliseconds and, for kernels, the minimum bytes and FLOPs the work
 * must move and do, and the ceiling it is compared with ("memcpy" or "gemm", measured in the
 * same run; null when none applies) with that ceiling's rate (GB/s or GFLOP/s).
 */
public record BenchResult(String name, String shape, double medianMs, double minMs, double maxMs, int runs, long bytes,
    long flops, String ceiling, double ceilingRate, double ratioToCeiling) {
  public static BenchResult of(String name, String shape, double[] sortedMs) {
    return of(name, shape, sortedMs, 0, 0);
  }

  public static BenchResult of(String name, String shape, double[] sortedMs, long bytes, long flops) {
    return new BenchResult(name, shape, Timing.median(sortedMs), sortedMs[0], sortedMs[sortedMs.length - 1],
        sortedMs.length, bytes, flops, null, Double.NaN, Double.NaN);
  }

  public double achievedGbps() {
    return bytes / (medianMs * 1e6);
  }

  public double achievedGflops() {
    return flops / (medianMs * 1e6);
  }

  /** GB/s of the fastest run: what a ceiling records, the best the machine showed. */
  public double peakGbps() {
    return bytes / (minMs * 1e6);
  }

  public double peakGflops() {
    return flops / (minMs * 1e6);
  }

  /** This result compared with a ceiling's rate (GB/s for memcpy, GFLOP/s for gemm). */
  public BenchResult against(String ceilingName, double ceilingRate) {
    double achieved = ceilingName.equals("memcpy") ? achievedGbps() : achievedGflops();
    return new BenchResult(name, shape, medianMs, minMs, maxMs, runs, bytes, flops, ceilingName, ceilingRate,
        achieved / ceilingRate);
  }

  /** The JSON object of this result: timings, then the work's size and rates, then the ceiling, where they apply. */
  Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("name", name);
    json.put("shape", shape);
    json.put("median_ms", Json.number(medianMs, "%.4f"));
    json.put("min_ms", Json.number(minMs, "%.4f"));
    json.put("max_ms", Json.number(maxMs, "%.4f"));
    json.put("runs", runs);
    if (bytes > 0 || flops > 0) {
      json.put("bytes", bytes);
      json.put("flops", flops);
      json.put("achieved_gbps", Json.number(achievedGbps(), "%.3f"));
      json.put("achieved_gflops", Json.number(achievedGflops(), "%.3f"));
    }
    if (ceiling != null) {
      json.put("ceiling", ceiling);
      json.put("ceiling_rate", Json.number(ceilingRate, "%.3f"));
      json.put("ratio_to_ceiling", Json.number(ratioToCeiling, "%.4f"));
    }
    return json;
  }
}
