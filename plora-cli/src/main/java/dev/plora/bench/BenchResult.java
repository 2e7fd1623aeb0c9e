package dev.plora.bench;

import java.util.Locale;

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

  String toJson() {
    StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
        "{\"name\": \"%s\", \"shape\": \"%s\", \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, \"runs\": %d",
        name, shape, medianMs, minMs, maxMs, runs));
    if (bytes > 0 || flops > 0) {
      sb.append(String.format(Locale.ROOT, ", \"bytes\": %d, \"flops\": %d, \"achieved_gbps\": %.3f, "
          + "\"achieved_gflops\": %.3f", bytes, flops, achievedGbps(), achievedGflops()));
    }
    if (ceiling != null) {
      sb.append(String.format(Locale.ROOT, ", \"ceiling\": \"%s\", \"ceiling_rate\": %.3f, \"ratio_to_ceiling\": %.4f",
          ceiling, ceilingRate, ratioToCeiling));
    }
    return sb.append('}').toString();
  }
}
