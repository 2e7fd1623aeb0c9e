package dev.plora.train;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Progress of a long run. On a terminal, a one-line bar redrawn in place ({@code \r}, at most
 * ten times a second). Elsewhere (a log file, a pipe, CI) plain lines: the first step, each
 * tenth of the run, at least one every {@value #LOG_SECONDS} seconds, and the last step.
 */
public final class ProgressBar implements TrainListener {
  private static final int WIDTH = 24;
  private static final int LOG_PARTS = 10;
  static final long LOG_SECONDS = 30;
  private final PrintStream out;
  private final String label;
  private final boolean terminal;
  private final LongSupplier nanoTime;
  private final long started;
  private long itemsPerStep;
  private String unit;
  private boolean printed;
  private long lastPrint;
  private long lastPart;

  /** A redrawn bar on {@code out}. */
  public ProgressBar(PrintStream out, String label) {
    this(out, label, true, System::nanoTime);
  }

  ProgressBar(PrintStream out, String label, boolean terminal, LongSupplier nanoTime) {
    this.out = out;
    this.label = label;
    this.terminal = terminal;
    this.nanoTime = nanoTime;
    this.started = nanoTime.getAsLong();
  }

  /** Progress on stderr: a bar when it is a terminal, plain log lines otherwise. */
  public static ProgressBar onStderr(String label) {
    return new ProgressBar(System.err, label, System.console() != null, System::nanoTime);
  }

  /** This bar also showing throughput in {@code unit} ("tokens"): {@code perStep} of them each step. */
  public ProgressBar counting(long perStep, String unit) {
    if (perStep < 1 || unit == null || unit.isBlank()) {
      throw new IllegalArgumentException("counting: expected perStep >= 1 and a unit, got " + perStep + ", " + unit);
    }
    this.itemsPerStep = perStep;
    this.unit = unit;
    return this;
  }

  @Override
  public void onStep(StepEvent e) {
    long now = nanoTime.getAsLong();
    long done = e.step() + 1;
    long part = done * LOG_PARTS / e.totalSteps();
    boolean last = done >= e.totalSteps();
    boolean due = terminal ? now - lastPrint >= 100_000_000L // at most ten redraws a second
        : part != lastPart || now - lastPrint >= LOG_SECONDS * 1_000_000_000L;
    if (printed && !last && !due) {
      return;
    }
    printed = true;
    lastPrint = now;
    lastPart = part;
    double fraction = done / (double) e.totalSteps();
    double elapsed = (now - started) / 1e9;
    String eta = clock(fraction > 0 ? elapsed / fraction - elapsed : 0);
    String rate = itemsPerStep > 0 ? String.format(Locale.ROOT, "%.0f %s/s", e.stepsPerSecond() * itemsPerStep, unit)
        : String.format(Locale.ROOT, "%.1f it/s", e.stepsPerSecond());
    if (terminal) {
      int filled = (int) Math.round(fraction * WIDTH);
      out.print(String.format(Locale.ROOT, "\r%s [%s%s] %d/%d loss %.4g lr %.2e %s eta %s ", label,
          "=".repeat(filled), " ".repeat(WIDTH - filled), done, e.totalSteps(), e.loss(), e.lr(), rate, eta));
      if (last) {
        out.println();
      }
    } else {
      out.println(String.format(Locale.ROOT, "%s %d/%d (%.0f%%) loss %.4g lr %.2e %s eta %s", label, done,
          e.totalSteps(), 100 * fraction, e.loss(), e.lr(), rate, eta));
    }
    out.flush();
  }

  private static String clock(double seconds) {
    long s = Math.round(seconds);
    return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
  }
}
