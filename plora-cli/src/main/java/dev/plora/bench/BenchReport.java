package dev.plora.bench;

import dev.plora.io.AtomicFiles;
import dev.plora.io.Json;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The results of one {@code plora bench} run and their JSON form. */
public record BenchReport(String backend, int threads, List<BenchResult> results) {
  /** The report: the run settings, then one result a line. */
  public String toJson() {
    Map<String, Object> report = new LinkedHashMap<>();
    report.put("backend", backend);
    report.put("threads", threads);
    report.put("results", results.stream().map(BenchResult::toJson).toList());
    return Json.write(report, 2) + "\n";
  }

  /** Writes the JSON to {@code file} atomically (temporary file, fsync, rename). */
  public void writeJson(Path file) throws IOException {
    AtomicFiles.write(file, toJson().getBytes(StandardCharsets.UTF_8), true);
  }
}
