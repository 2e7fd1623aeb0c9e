package dev.plora.bench;

import dev.plora.io.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/** The results of one {@code plora bench} run and their JSON form. */
public record BenchReport(String backend, int threads, List<BenchResult> results) {
  public String toJson() {
    String items = results.stream().map(r -> "    " + r.toJson()).collect(Collectors.joining(",\n"));
    return "{\n  \"backend\": \"" + backend + "\",\n  \"threads\": " + threads + ",\n  \"results\": [\n" + items
        + "\n  ]\n}\n";
  }

  /** Writes the JSON to {@code file} atomically (temporary file, fsync, rename). */
  public void writeJson(Path file) throws IOException {
    AtomicFiles.write(file, toJson().getBytes(StandardCharsets.UTF_8), true);
  }
}
