package example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoraOnMlpTest {
  @Test
  void loraTrainingLowersTheValidationLoss(@TempDir Path dir) throws Exception {
    LoraOnMlp.Result result = LoraOnMlp.run(dir.resolve("adapter"), 300);
    assertEquals(List.of("layers.0", "layers.1"), result.adaptedModules());
    assertTrue(result.lossAfter() < 0.5 * result.lossBefore(),
        "validation loss " + result.lossBefore() + " -> " + result.lossAfter() + ": expected at least halved");
    assertTrue(Files.isRegularFile(result.adapterDir().resolve("adapter_config.json")));
    assertTrue(Files.isRegularFile(result.adapterDir().resolve("adapter_model.safetensors")));
  }

  /** plora-core alone is on a pipeline's class path: none of the command line's dependencies. */
  @Test
  void theLibraryBringsNoApplicationDependencies() {
    for (String cls : List.of("picocli.CommandLine", "org.jfree.chart.JFreeChart", "dev.plora.cli.Main")) {
      assertThrows(ClassNotFoundException.class, () -> Class.forName(cls), cls + " is on the class path");
    }
  }
}
