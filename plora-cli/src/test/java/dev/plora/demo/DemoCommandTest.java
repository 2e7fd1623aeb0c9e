package dev.plora.demo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.cli.Main;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code plora demo --quick}: the report's shape and sanity, and the plots. */
class DemoCommandTest {
  private static final List<String> KEYS = List.of("rank", "unload_every", "momentum", "lr", "initial_val_loss",
      "final_val_loss", "gain", "gain_vs_lora", "effective_rank", "rank_above_1pct", "trainable_bytes", "seconds",
      "steps_per_second");

  @Test
  void quickDemoWritesASaneReportAndTwoPlots(@TempDir Path dir) throws Exception {
    StringWriter out = new StringWriter(), err = new StringWriter();
    int code = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), "demo", "--quick", "--backend", "cpu",
        "--out", dir.toString());
    assertEquals(0, code, err.toString());
    assertTrue(out.toString().contains("plora_momentum"), out.toString());
    assertTrue(err.toString().contains("demo"), "progress on stderr: " + err);

    String json = Files.readString(dir.resolve("report.json"));
    assertTrue(json.contains("\"backend\": \"cpu\"") && json.contains("\"seed\": 1"), json);
    Map<String, Map<String, Double>> runs = new HashMap<>();
    Matcher m = Pattern.compile("\\{\"method\": \"([a-z_]+)\", (.*?)\"lr_sweep\"").matcher(json);
    while (m.find()) {
      Map<String, Double> fields = new HashMap<>();
      for (String key : KEYS) {
        Matcher f = Pattern.compile("\"" + key + "\": ([-0-9.e]+)").matcher(m.group(2));
        assertTrue(f.find(), m.group(1) + " lacks " + key);
        fields.put(key, Double.parseDouble(f.group(1)));
      }
      runs.put(m.group(1), fields);
    }
    assertEquals(Set.of("full", "lora", "plora_full", "plora_momentum", "relora"), runs.keySet());

    Map<String, Double> lora = runs.get("lora");
    for (Map.Entry<String, Map<String, Double>> e : runs.entrySet()) {
      Map<String, Double> r = e.getValue();
      String name = e.getKey();
      assertEquals(lora.get("initial_val_loss"), r.get("initial_val_loss"), 1e-9, name + ": all start from the backbone");
      assertTrue(r.get("final_val_loss") < r.get("initial_val_loss"), name + " learned nothing");
      assertEquals(r.get("initial_val_loss") - r.get("final_val_loss"), r.get("gain"), 1e-5 * r.get("initial_val_loss"));
      assertTrue(r.get("seconds") > 0 && r.get("steps_per_second") > 0, name);
      if (!name.equals("full")) {
        assertEquals(8.0, r.get("rank"), name);
        assertEquals(lora.get("trainable_bytes"), r.get("trainable_bytes"), name + ": same trainable bytes as LoRA");
      }
    }
    assertEquals(1.0, lora.get("gain_vs_lora"), 1e-6);
    assertTrue(lora.get("rank_above_1pct") <= 8, "LoRA's update has rank <= r");
    assertTrue(runs.get("full").get("trainable_bytes") > 10 * lora.get("trainable_bytes"));
    for (String plora : new String[] {"plora_full", "plora_momentum"}) {
      assertTrue(runs.get(plora).get("effective_rank") > lora.get("effective_rank"),
          plora + " accumulates an update of higher rank than LoRA's");
    }
    for (String png : new String[] {"loss.png", "spectrum.png"}) {
      byte[] head = Arrays.copyOf(Files.readAllBytes(dir.resolve(png)), 8);
      assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, head, png + " is a PNG");
    }
  }

  @Test
  void badOptionsExitWithCode2() {
    StringWriter out = new StringWriter(), err = new StringWriter();
    assertEquals(2, Main.run(new PrintWriter(out, true), new PrintWriter(err, true), "demo", "--rank", "0",
        "--momentum", "2"));
    assertTrue(err.toString().contains("--rank") && err.toString().contains("--momentum"), err.toString());
  }
}
