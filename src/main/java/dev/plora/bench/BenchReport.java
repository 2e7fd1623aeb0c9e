package dev.plora.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.stream.Collectors;

/** The results of one {@code plora bench} run and their JSON form. */
public record BenchReport(String backend, int threads, List<BenchResult> results) {
  public String toJson() {
    String items = results.stream().map(r -> "    " + r.toJson()).collect(Collectors.joining(",\n"));
    return "{\n  \"backend\": \"" + backend + "\",\n  \"threads\": " + threads + ",\n  \"results\": [\n" + items
        + "\n  ]\n}\n";
  }

  /** Writes the JSON to {@code file} atomically: a temporary file beside it, then a rename. */
  public void writeJson(Path file) throws IOException {
    Path target = file.toAbsolutePath();
    Path dir = target.getParent();
    if (dir != null) {
      Files.createDirectories(dir);
    }
    Path tmp = Files.createTempFile(dir, target.getFileName().toString(), ".tmp");
    try {
      Files.writeString(tmp, toJson(), StandardCharsets.UTF_8);
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }
}
