package dev.plora.demo.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.finetune.Evaluation;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shipped base is what its recipe makes, and it knows the family but not the demo's language. */
class LmDemoBaseTest {
  @Test
  void theRecipeRemakesTheShippedBaseBitForBit(@TempDir Path dir) throws IOException {
    Path shipped = dir.resolve("shipped"), remade = dir.resolve("remade");
    LmDemoBase.extract(shipped);
    LmDemoBase.remake(remade);
    for (String file : new String[] {"config.json", "model.safetensors"}) {
      assertArrayEquals(Files.readAllBytes(shipped.resolve(file)), Files.readAllBytes(remade.resolve(file)),
          file + " differs from a remake: if a kernel or the recipe changed on purpose, remake the base with "
              + "./plora demo lm --remake-base plora-cli/src/main/resources/dev/plora/demo/lm/base");
    }
  }

  /**
   * The base is near the floor on every language of its family and worse than a uniform guess on
   * the new one: what it must unlearn and learn is a relabelling of every input token.
   */
  @Test
  void theBaseKnowsItsFamilyAndNotTheNewLanguage(@TempDir Path dir) throws IOException {
    LmDemoBase.extract(dir);
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM m = LlamaForCausalLM.load(backend, dir, DType.F32, false)) {
      for (BigramLanguage member : LmDemoBase.family()) {
        double loss = Evaluation.evaluate(m, member.examples(16, 5)).loss();
        assertTrue(loss < member.entropy() + Math.log(LmDemoBase.FAMILY) + 0.3,
            "within the cost of not knowing which member: " + loss + " vs floor " + member.entropy());
      }
      BigramLanguage fresh = LmDemoBase.fineTuneLanguage(1);
      double loss = Evaluation.evaluate(m, fresh.examples(16, 5)).loss();
      assertTrue(loss > Math.log(LmDemoBase.VOCAB), "worse than uniform on the new language: " + loss);
      assertEquals(LmDemoBase.VOCAB, m.config().vocabSize());
    }
  }
}
