package dev.plora.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class ProgressBarTest {
  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
  private long now;

  private void steps(ProgressBar bar, int total, long nanosPerStep) {
    for (int step = 0; step < total; step++) {
      now += nanosPerStep;
      bar.onStep(new TrainListener.StepEvent(step, total, 0.5, 1e-3, 1, 100));
    }
  }

  @Test
  void offATerminalItLogsPlainLinesEachTenthOfTheRun() {
    steps(new ProgressBar(out, "train", false, () -> now), 1000, 1_000_000L); // 1 ms a step
    String text = bytes.toString(StandardCharsets.UTF_8);
    assertFalse(text.contains("\r"), "no redrawn bar in a log");
    List<String> lines = text.lines().toList();
    assertEquals(11, lines.size(), "the first step, then each tenth: " + text);
    assertEquals("train 1/1000 (0%) loss 0.5000 lr 1.00e-03 100.0 it/s eta 0:01", lines.get(0));
    assertTrue(lines.get(1).startsWith("train 100/1000 (10%) loss 0.5000"), lines.get(1));
    assertEquals("train 1000/1000 (100%) loss 0.5000 lr 1.00e-03 100.0 it/s eta 0:00", lines.get(10));
  }

  @Test
  void countingShowsThroughputInItsUnit() {
    steps(new ProgressBar(out, "finetune", false, () -> now).counting(2048, "tokens"), 10, 1_000_000L);
    assertEquals("finetune 10/10 (100%) loss 0.5000 lr 1.00e-03 204800 tokens/s eta 0:00",
        bytes.toString(StandardCharsets.UTF_8).lines().reduce((a, b) -> b).orElseThrow());
  }

  @Test
  void aSlowRunLogsAtLeastEveryFewSeconds() {
    steps(new ProgressBar(out, "train", false, () -> now), 20, 10_000_000_000L); // 10 s a step, 20 steps
    List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
    assertEquals(List.of("train 1/20 (5%)", "train 2/20 (10%)", "train 4/20 (20%)", "train 6/20 (30%)",
        "train 8/20 (40%)", "train 10/20 (50%)", "train 12/20 (60%)", "train 14/20 (70%)", "train 16/20 (80%)",
        "train 18/20 (90%)", "train 20/20 (100%)"), lines.stream().map(l -> l.substring(0, l.indexOf(')') + 1)).toList(),
        "each tenth is two steps, sooner than " + ProgressBar.LOG_SECONDS + " s");
    bytes.reset();
    steps(new ProgressBar(out, "slow", false, () -> now), 1000, 10_000_000_000L); // a tenth takes 1000 s
    long lines30s = bytes.toString(StandardCharsets.UTF_8).lines().count();
    assertEquals(1 + 10000 / ProgressBar.LOG_SECONDS, lines30s, 12, "a line every " + ProgressBar.LOG_SECONDS
        + " s (and each tenth)");
  }

  @Test
  void onATerminalItRedrawsOneLineAtMostTenTimesASecond() {
    steps(new ProgressBar(out, "train", true, () -> now), 100, 50_000_000L); // 20 steps a second for 5 s
    String text = bytes.toString(StandardCharsets.UTF_8);
    long draws = text.chars().filter(c -> c == '\r').count();
    assertEquals(51, draws, 1, text);
    assertEquals(1, text.chars().filter(c -> c == '\n').count(), "one line, ended after the last step");
    assertTrue(text.endsWith("] 100/100 loss 0.5000 lr 1.00e-03 100.0 it/s eta 0:00 " + System.lineSeparator()), text);
  }
}
