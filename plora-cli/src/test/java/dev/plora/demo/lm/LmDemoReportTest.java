package dev.plora.demo.lm;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.demo.Method;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What the summary says, from results made up for the purpose: above all, that a quick run never oversells. */
class LmDemoReportTest {
  @Test
  void aQuickRunTooShortToShowTheEffectSaysSoInsteadOfPrintingARatioToBelieve() {
    String summary = summary(LmDemoConfig.quick(), 1.1);
    assertTrue(summary.contains("too short to show the effect") && summary.contains("1.10x"), summary);
  }

  @Test
  void aQuickRunThatShowsTheEffectWarnsThatTheRatioIsSmallerThanTheDefaultRuns() {
    String summary = summary(LmDemoConfig.quick(), 1.35);
    assertTrue(summary.contains("expect a smaller ratio"), summary);
    assertFalse(summary.contains("too short"), summary);
  }

  @Test
  void theDefaultRunStatesEachMethodAgainstLoraAndTheCeiling() {
    String summary = summary(LmDemoConfig.defaults(), 1.46);
    assertTrue(summary.contains("plora_full learned 1.46x what LoRA learned at r = 1 on q_proj, v_proj (same "
        + "trainable bytes: yes)"), summary);
    assertTrue(summary.contains("full fine-tuning (the ceiling"), summary);
    assertFalse(summary.contains("quick"), summary);
  }

  private static String summary(LmDemoConfig config, double ploraRatio) {
    double baseLoss = 5, loraGain = 2;
    List<LmRun> runs = new ArrayList<>();
    for (Method m : Method.values()) {
      double ratio = switch (m) {
        case LORA -> 1;
        case PLORA_FULL -> ploraRatio;
        case FULL -> 1.6;
        default -> 1.05;
      };
      double gain = loraGain * ratio;
      runs.add(new LmRun(m, m.usesAdapters() ? 1 : 0, 10, 0f, 1e-2, List.of(new double[] {1e-2, baseLoss - gain}),
          new long[] {0, 10}, new double[] {baseLoss, baseLoss - gain}, baseLoss - gain, 0.5, gain, ratio,
          Map.of("model.layers.0.self_attn.q_proj", new double[] {m.usesAdapters() ? 1 : 30, 1}),
          m.usesAdapters() ? 8192 : 1 << 20, 1, 1, new double[] {1}));
    }
    LmDemo.Result result = new LmDemo.Result(config, "cpu", baseLoss, baseLoss, 0.05, 1.1, 1.1, Math.log(64), runs);
    StringWriter out = new StringWriter();
    new LmDemoReport(result).printSummary(new PrintWriter(out, true));
    return out.toString();
  }
}
