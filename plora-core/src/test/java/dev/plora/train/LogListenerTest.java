package dev.plora.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.testing.CapturingLogger;
import dev.plora.train.TrainerTest.Batch;
import dev.plora.train.TrainerTest.Task;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.slf4j.event.Level;

class LogListenerTest {
  private static final Pattern LINE = Pattern.compile("step (\\d+)/(\\d+) loss (\\S+) lr (\\S+) grad_norm (\\S+) "
      + "(\\S+) steps/s (\\S+) samples/s");

  /** The logged values are the trainer's own, each to the digits printed, every 4 steps and at the last. */
  @Test
  void logsTheTrainersValuesAtTheChosenInterval() {
    CapturingLogger log = new CapturingLogger("train", Level.DEBUG);
    List<TrainListener.StepEvent> events = new ArrayList<>();
    List<TrainListener.UnloadEvent> unloads = new ArrayList<>();
    int samplesPerStep = 24 * 2;
    try (Backend backend = new CpuBackend(); Task task = new Task(backend, 4, 0f);
        Trainer<Batch> trainer = task.trainer(10).gradientAccumulation(2).periodic(PeriodicLoraConfig.full(3))
            .listener(new LogListener(4).counting(samplesPerStep, "samples").to(log))
            .listener(new TrainListener() {
              @Override
              public void onStep(StepEvent e) {
                events.add(e);
              }

              @Override
              public void onUnload(UnloadEvent e) {
                unloads.add(e);
              }
            }).build()) {
      trainer.run();
    }
    List<String> lines = log.messages(Level.INFO);
    assertEquals(3, lines.size(), "steps 4, 8 and the last, 10: " + lines);
    int[] logged = {4, 8, 10};
    for (int i = 0; i < lines.size(); i++) {
      Matcher m = LINE.matcher(lines.get(i));
      assertTrue(m.matches(), lines.get(i));
      TrainListener.StepEvent e = events.get(logged[i] - 1);
      assertEquals(logged[i], Long.parseLong(m.group(1)), lines.get(i));
      assertEquals(10, Long.parseLong(m.group(2)), lines.get(i));
      assertEquals(e.loss(), Double.parseDouble(m.group(3)), 1e-5 * e.loss(), "loss: " + lines.get(i));
      assertEquals(e.lr(), Double.parseDouble(m.group(4)), 1e-3 * e.lr(), "lr: " + lines.get(i));
      assertEquals(e.gradNorm(), Double.parseDouble(m.group(5)), 1e-3 * e.gradNorm(), "grad norm: " + lines.get(i));
      assertEquals(e.stepsPerSecond(), Double.parseDouble(m.group(6)), 0.005 + 1e-9, "steps/s: " + lines.get(i));
      assertEquals(e.stepsPerSecond() * samplesPerStep, Double.parseDouble(m.group(7)), 0.05 + 1e-9,
          "samples/s: " + lines.get(i));
    }
    assertEquals(3, unloads.size(), "an unload after steps 3, 6 and 9");
    List<String> debug = log.messages(Level.DEBUG);
    for (int i = 0; i < unloads.size(); i++) {
      TrainListener.UnloadEvent u = unloads.get(i);
      assertEquals("unload " + u.index() + " after step " + (u.step() + 1) + " (" + u.policy() + ")", debug.get(i));
    }
  }

  @Test
  void withoutACountOnlyStepsPerSecondAndNothingBelowTheLoggersLevel() {
    CapturingLogger log = new CapturingLogger("train", Level.WARN);
    LogListener quiet = new LogListener(1).to(log);
    quiet.onStep(new TrainListener.StepEvent(0, 1, 0.5, 1e-3, 2, 10));
    assertEquals(List.of(), log.lines(), "INFO is off");
    CapturingLogger info = new CapturingLogger("train", Level.INFO);
    new LogListener(1).to(info).onStep(new TrainListener.StepEvent(0, 1, 0.5, 1e-3, 2, 10));
    assertEquals(List.of("step 1/1 loss 0.500000 lr 1.000e-03 grad_norm 2.000 10.00 steps/s"),
        info.messages(Level.INFO));
  }

  @Test
  void badSettingsAreRefusedByName() {
    assertTrue(assertThrows(IllegalArgumentException.class, () -> new LogListener(0)).getMessage()
        .startsWith("every: expected >= 1"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> new LogListener(5).counting(0, "tokens"))
        .getMessage().startsWith("perStep: expected >= 1"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> new LogListener(5).counting(8, " "))
        .getMessage().startsWith("unit: expected"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> new LogListener(5).to(null))
        .getMessage().startsWith("logger: must not be null"));
  }
}
