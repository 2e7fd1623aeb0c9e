package dev.plora.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The sampler's distributions against their definitions, and its determinism. */
class SamplerTest {
  private static final float[] LOGITS = {2f, 1f, 0.5f, 0f, -1f, -3f};
  private static final int DRAWS = 40_000;

  private static float[] randomLogits(SplittableRandom rng, int n) {
    float[] z = new float[n];
    for (int i = 0; i < n; i++) {
      z[i] = (float) (rng.nextGaussian() * 3);
    }
    return z;
  }

  /** softmax(logits / t) in float64. */
  private static double[] softmax(float[] logits, double t) {
    double[] p = new double[logits.length];
    double sum = 0;
    for (int i = 0; i < p.length; i++) {
      p[i] = Math.exp(logits[i] / t);
      sum += p[i];
    }
    for (int i = 0; i < p.length; i++) {
      p[i] /= sum;
    }
    return p;
  }

  private static long[] counts(GenerationConfig config, float[] logits) {
    Sampler s = new Sampler(config);
    long[] n = new long[logits.length];
    for (int i = 0; i < DRAWS; i++) {
      n[s.sample(logits)]++;
    }
    return n;
  }

  /** Pearson's statistic of the counts against probabilities p; a count where p = 0 makes it infinite. */
  private static double chiSquare(long[] observed, double[] p) {
    double chi = 0;
    for (int i = 0; i < p.length; i++) {
      double expected = DRAWS * p[i];
      chi += expected == 0 ? (observed[i] == 0 ? 0 : Double.POSITIVE_INFINITY)
          : (observed[i] - expected) * (observed[i] - expected) / expected;
    }
    return chi;
  }

  @Test
  void temperatureDrawsFollowTheSoftmax() {
    long[] n = counts(GenerationConfig.sampling(1, 0.7f, 5), LOGITS);
    // 5 degrees of freedom: P(chi² > 20.5) = 0.001
    double fit = chiSquare(n, softmax(LOGITS, 0.7));
    assertTrue(fit < 20.5, "chi² " + fit + " against softmax(z / 0.7)");
    double wrong = chiSquare(n, softmax(LOGITS, 1.0));
    assertTrue(wrong > 100, "the check has power: chi² " + wrong + " against softmax(z / 1.0)");
  }

  @Test
  void topKAndTopPDrawFromTheirTokensOnly() {
    double[] p = softmax(LOGITS, 1.0);
    double[] top2 = {p[0] / (p[0] + p[1]), p[1] / (p[0] + p[1]), 0, 0, 0, 0};
    double fitK = chiSquare(counts(GenerationConfig.sampling(1, 1f, 6).withTopK(2), LOGITS), top2);
    assertTrue(fitK < 10.8, "top-k 2: chi² " + fitK); // 1 degree of freedom, P = 0.001
    // p = 0.561, 0.206, 0.125, ...: top-p 0.8 keeps the first three (0.561 + 0.206 < 0.8)
    double kept = p[0] + p[1] + p[2];
    double[] nucleus = {p[0] / kept, p[1] / kept, p[2] / kept, 0, 0, 0};
    double fitP = chiSquare(counts(GenerationConfig.sampling(1, 1f, 7).withTopP(0.8f), LOGITS), nucleus);
    assertTrue(fitP < 13.8, "top-p 0.8: chi² " + fitP); // 2 degrees of freedom, P = 0.001
  }

  @Test
  void topKOneAndATinyTopPAreGreedy() {
    SplittableRandom rng = new SplittableRandom(3);
    Sampler greedy = new Sampler(GenerationConfig.greedy(1));
    Sampler k1 = new Sampler(GenerationConfig.sampling(1, 1.3f, 1).withTopK(1));
    Sampler tinyP = new Sampler(GenerationConfig.sampling(1, 1.3f, 2).withTopP(1e-6f));
    for (int i = 0; i < 200; i++) {
      float[] z = randomLogits(rng, 1 + rng.nextInt(300));
      int best = greedy.sample(z);
      assertEquals(best, k1.sample(z));
      assertEquals(best, tinyP.sample(z));
    }
    assertEquals(1, greedy.sample(new float[] {0f, 4f, 4f, Float.NEGATIVE_INFINITY}), "ties to the lowest id");
  }

  @Test
  void tokensAreOrderedByLogitThenId() {
    float[] z = {2f, -1f, 0f, -0f, 3.5f, 2f, Float.NEGATIVE_INFINITY, -7.25f, 1e-30f};
    assertArrayEquals(new int[] {4, 0, 5, 8, 2, 3, 1, 7, 6}, Sampler.byLogit(z));
    long[] n = counts(GenerationConfig.sampling(1, 1f, 9).withTopK(2), new float[] {1f, 5f, 5f, 0f});
    assertEquals(0, n[0] + n[3], "top-k 2 of tied logits: ids 1 and 2");
  }

  @Test
  void theSameSeedDrawsTheSameTokens() {
    SplittableRandom rng = new SplittableRandom(4);
    float[][] logits = new float[300][];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = randomLogits(rng, 50);
    }
    GenerationConfig config = GenerationConfig.sampling(1, 1.1f, 42).withTopK(30).withTopP(0.9f);
    int[][] runs = new int[3][logits.length];
    for (int r = 0; r < 3; r++) {
      Sampler s = new Sampler(r < 2 ? config : config.withSeed(43));
      for (int i = 0; i < logits.length; i++) {
        runs[r][i] = s.sample(logits[i]);
      }
    }
    assertArrayEquals(runs[0], runs[1]);
    assertTrue(!java.util.Arrays.equals(runs[0], runs[2]), "another seed draws other tokens");
  }

  @Test
  void refusals() {
    Sampler s = new Sampler(GenerationConfig.sampling(1, 1f, 1));
    assertThrows(IllegalArgumentException.class, () -> s.sample(new float[] {0f, Float.NaN}));
    assertThrows(IllegalArgumentException.class, () -> s.sample(new float[0]));
    assertThrows(IllegalArgumentException.class, () -> new GenerationConfig(0, 1f, 0, 1f, 0, Set.of()));
    assertThrows(IllegalArgumentException.class, () -> new GenerationConfig(4, -1f, 0, 1f, 0, Set.of()));
    assertThrows(IllegalArgumentException.class, () -> new GenerationConfig(4, 1f, 0, 0f, 0, Set.of()));
    assertThrows(IllegalArgumentException.class, () -> new GenerationConfig(4, 1f, -2, 1f, 0, Set.of()));
  }

  @Test
  void eosTokenIdsComeFromBothConfigFiles(@TempDir Path dir) throws Exception {
    assertEquals(Set.of(), GenerationConfig.eosTokenIds(dir));
    Files.writeString(dir.resolve("config.json"), "{\"eos_token_id\": 2}");
    assertEquals(Set.of(2), GenerationConfig.eosTokenIds(dir));
    Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [128001, 128009]}");
    assertEquals(Set.of(2, 128001, 128009), GenerationConfig.eosTokenIds(dir));
    Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": \"</s>\"}");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> GenerationConfig.eosTokenIds(dir));
    assertTrue(e.getMessage().contains("eos_token_id"), e.getMessage());
  }
}
