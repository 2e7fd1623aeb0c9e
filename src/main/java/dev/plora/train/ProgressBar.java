package dev.plora.train;

import java.io.PrintStream;
import java.util.Locale;

/** A one-line progress bar for long runs, redrawn in place on a terminal ({@code \r}). */
public final class ProgressBar implements TrainListener {
  private static final int WIDTH = 24;
  private final PrintStream out;
  private final String label;
  private final long started = System.nanoTime();
  private long lastDraw;

  public ProgressBar(PrintStream out, String label) {
    this.out = out;
    this.label = label;
  }

  /** A bar on stderr when it is a terminal, otherwise a listener that does nothing. */
  public static TrainListener onTerminal(String label) {
    return System.console() != null ? new ProgressBar(System.err, label) : new TrainListener() {};
  }

  @Override
  public void onStep(StepEvent e) {
    long now = System.nanoTime();
    boolean last = e.step() + 1 >= e.totalSteps();
    if (!last && now - lastDraw < 100_000_000L) {
      return; // at most ten redraws a second
    }
    lastDraw = now;
    double done = (e.step() + 1) / (double) e.totalSteps();
    int filled = (int) Math.round(done * WIDTH);
    double elapsed = (now - started) / 1e9;
    double eta = done > 0 ? elapsed / done - elapsed : 0;
    out.print(String.format(Locale.ROOT, "\r%s [%s%s] %d/%d loss %.4g lr %.2e %.1f it/s eta %s ", label,
        "=".repeat(filled), " ".repeat(WIDTH - filled), e.step() + 1, e.totalSteps(), e.loss(), e.lr(),
        e.stepsPerSecond(), clock(eta)));
    if (last) {
      out.println();
    }
    out.flush();
  }

  private static String clock(double seconds) {
    long s = Math.round(seconds);
    return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
  }
}
