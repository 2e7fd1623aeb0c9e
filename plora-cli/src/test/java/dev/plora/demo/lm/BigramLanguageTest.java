package dev.plora.demo.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.data.Batch;
import dev.plora.data.Example;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The generated languages: what a relabelling changes, the entropy floor, and determinism by seed. */
class BigramLanguageTest {
  private final BigramLanguage lang = BigramLanguage.of(37, 3, 20, 5);

  @Test
  void sequencesFollowTheSuccessorSetsAndScoreAllButTheFirstToken() {
    for (Example e : lang.examples(50, 9)) {
      assertEquals(-100, e.labels()[0]);
      for (int i = 1; i < e.inputIds().length; i++) {
        assertEquals(e.inputIds()[i], e.labels()[i]);
        assertTrue(lang.allows(e.inputIds()[i - 1], e.inputIds()[i]), "token " + i + " may follow its predecessor");
      }
    }
  }

  @Test
  void aRelabellingKeepsTheSuccessorSetsButMovesThemToOtherTokens() {
    BigramLanguage p = lang.permuted(77);
    int moved = 0;
    boolean[] seen = new boolean[lang.vocab()];
    for (int t = 0; t < lang.vocab(); t++) {
      int source = -1;
      for (int u = 0; u < lang.vocab(); u++) {
        if (p.next()[t] == lang.next()[u]) {
          source = u;
        }
      }
      assertTrue(source >= 0 && !seen[source], "token " + t + " takes the successors of exactly one other token");
      seen[source] = true;
      moved += source != t ? 1 : 0;
    }
    assertTrue(moved > lang.vocab() / 2, "most tokens change meaning: " + moved);
    assertEquals(lang.entropy(), p.entropy(), 1e-12, "a relabelling keeps the floor");
  }

  /** The floor is the mean conditional entropy over a uniform token: a sampled estimate agrees within its error. */
  @Test
  void entropyIsTheMeanLossOfTheTrueModel() {
    BigramLanguage pairs = new BigramLanguage(lang.vocab(), lang.branch(), 2, lang.next(), lang.cumulative());
    SplittableRandom rng = new SplittableRandom(3);
    double sum = 0;
    int n = 40_000;
    for (int k = 0; k < n; k++) {
      int[] ids = pairs.example(rng).inputIds(); // a uniform token and one successor
      int j = 0;
      while (lang.next()[ids[0]][j] != ids[1]) {
        j++;
      }
      sum -= Math.log(lang.cumulative()[ids[0]][j] - (j == 0 ? 0 : lang.cumulative()[ids[0]][j - 1]));
    }
    assertEquals(lang.entropy(), sum / n, 0.02, "sampled conditional entropy");
    assertTrue(lang.entropy() > 0 && lang.entropy() < Math.log(3), "between a certain and a uniform successor");
  }

  @Test
  void batchesAndExampleSetsArePureFunctionsOfTheirSeeds() {
    Batch a = lang.batches(4, 11).batch(7, 0), b = lang.batches(4, 11).batch(7, 0), c = lang.batches(4, 11).batch(8, 0);
    for (int i = 0; i < 4; i++) {
      assertArrayEquals(a.inputIds().get(i), b.inputIds().get(i));
    }
    assertNotEquals(List.of(a.inputIds().get(0)[0], a.inputIds().get(0)[1]),
        List.of(c.inputIds().get(0)[0], c.inputIds().get(0)[1]), "another step, other sequences");
    assertArrayEquals(lang.examples(3, 4).get(2).inputIds(), lang.examples(3, 4).get(2).inputIds());
    assertTrue(BigramLanguage.of(37, 3, 20, 5).allows(3, lang.next()[3][0]), "the language itself is its seed's");
  }

  @Test
  void badSettingsAreRefusedByName() {
    assertTrue(assertThrows(IllegalArgumentException.class, () -> BigramLanguage.of(4, 5, 8, 1)).getMessage()
        .contains("branch"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> BigramLanguage.of(4, 2, 1, 1)).getMessage()
        .contains("seqLen"));
  }
}
