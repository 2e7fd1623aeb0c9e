package dev.plora.bench;

import java.util.Locale;

/** One benchmark's timings, in milliseconds. */
public record BenchResult(String name, String shape, double medianMs, double minMs, double maxMs, int runs) {
  public static BenchResult of(String name, String shape, double[] sortedMs) {
    return new BenchResult(name, shape, Timing.median(sortedMs), sortedMs[0], sortedMs[sortedMs.length - 1],
        sortedMs.length);
  }

  String toJson() {
    return String.format(Locale.ROOT,
        "{\"name\": \"%s\", \"shape\": \"%s\", \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, \"runs\": %d}",
        name, shape, medianMs, minMs, maxMs, runs);
  }
}
