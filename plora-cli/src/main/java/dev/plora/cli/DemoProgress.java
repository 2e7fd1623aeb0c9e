package dev.plora.cli;

import dev.plora.demo.Progress;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.function.Consumer;

/** A demo's progress on stderr: a redrawn bar on a terminal, otherwise a line each time the phase changes. */
final class DemoProgress {
  private DemoProgress() {}

  static Consumer<Progress> printer(PrintWriter err, String name) {
    boolean terminal = System.console() != null;
    String[] lastLabel = {""};
    long start = System.nanoTime();
    return p -> {
      double elapsed = (System.nanoTime() - start) / 1e9;
      String eta = p.fraction() > 0.02 && p.fraction() < 1
          ? String.format(Locale.ROOT, ", ETA %.0f s", elapsed * (1 - p.fraction()) / p.fraction()) : "";
      if (terminal) {
        int filled = (int) Math.round(p.fraction() * 30);
        err.printf(Locale.ROOT, "\r%s [%s%s] %3.0f%% %-32s%-14s", name, "=".repeat(filled), " ".repeat(30 - filled),
            100 * p.fraction(), p.label(), eta);
        if (p.fraction() >= 1) {
          err.println();
        }
      } else if (!p.label().equals(lastLabel[0])) {
        err.printf(Locale.ROOT, "%s %3.0f%% %s%s%n", name, 100 * p.fraction(), p.label(), eta);
      }
      lastLabel[0] = p.label();
      err.flush();
    };
  }
}
