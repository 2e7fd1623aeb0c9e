package dev.plora.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.model.TokenBatch;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.train.Trainer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Packing, padding, shuffling and resuming over examples of random lengths. */
class BatchesTest {
  private static final int N = 37, SEQ_LEN = 16, BUDGET = 40, VOCAB = TinyLlama.VOCAB;

  /** Examples of 1 to SEQ_LEN tokens, the ids tagging the example (first id = its index), some labels ignored. */
  private static List<Example> examples(int n, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    List<Example> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int length = 1 + rng.nextInt(SEQ_LEN);
      int[] ids = new int[length], labels = new int[length];
      for (int t = 0; t < length; t++) {
        ids[t] = t == 0 ? i % VOCAB : rng.nextInt(VOCAB);
        labels[t] = rng.nextInt(4) == 0 ? Example.IGNORE : ids[t];
      }
      out.add(new Example(ids, labels));
    }
    return out;
  }

  private static final List<Example> EXAMPLES = examples(N, 1);

  private static List<Batch> read(Batches batches, long count) {
    List<Batch> out = new ArrayList<>();
    Batches.Cursor cursor = batches.cursor(new Batches.Position(0, 0));
    for (long i = 0; i < count; i++) {
      out.add(cursor.next());
    }
    return out;
  }

  private static void assertSameBatch(Batch expected, Batch actual) {
    assertArrayEquals(expected.examples(), actual.examples());
    assertEquals(expected.inputIds().size(), actual.inputIds().size());
    for (int d = 0; d < expected.inputIds().size(); d++) {
      assertArrayEquals(expected.inputIds().get(d), actual.inputIds().get(d));
      assertArrayEquals(expected.labels().get(d), actual.labels().get(d));
    }
  }

  @ParameterizedTest(name = "fill to budget: {0}")
  @ValueSource(booleans = {true, false})
  void packingKeepsTheBudgetSplitsNothingAndServesEveryExampleOnceAnEpoch(boolean fill) {
    Batches batches = Batches.packed(EXAMPLES, BUDGET).seed(3).padId(CharTokenizer.PAD).fillToBudget(fill).build();
    for (int epoch = 0; epoch < 4; epoch++) {
      int[] seen = new int[N];
      int count = batches.batchesInEpoch(epoch);
      for (int b = 0; b < count; b++) {
        Batch batch = batches.batch(new Batches.Position(epoch, b));
        int used = 0;
        for (int d = 0; d < batch.examples().length; d++) {
          Example e = EXAMPLES.get(batch.examples()[d]);
          assertArrayEquals(e.inputIds(), batch.inputIds().get(d), "a document is its example whole");
          assertArrayEquals(e.labels(), batch.labels().get(d));
          seen[batch.examples()[d]]++;
          used += e.length();
        }
        for (int d = batch.examples().length; d < batch.inputIds().size(); d++) {
          assertArrayEquals(new int[] {CharTokenizer.PAD}, batch.inputIds().get(d));
          assertArrayEquals(new int[] {Example.IGNORE}, batch.labels().get(d));
        }
        assertTrue(used <= BUDGET, used + " tokens");
        assertEquals(fill ? BUDGET : used, batch.tokens());
        if (b + 1 < count) { // a batch closes only when the next example does not fit
          int next = batches.batch(new Batches.Position(epoch, b + 1)).examples()[0];
          assertTrue(used + EXAMPLES.get(next).length() > BUDGET);
        }
      }
      int[] once = new int[N];
      Arrays.fill(once, 1);
      assertArrayEquals(once, seen, "epoch " + epoch);
    }
  }

  @Test
  void shufflingDependsOnSeedAndEpochOnly() {
    Batches a = Batches.packed(EXAMPLES, BUDGET).seed(11).build(), b = Batches.packed(EXAMPLES, BUDGET).seed(11).build();
    long count = a.batchesIn(3);
    List<Batch> first = read(a, count), second = read(b, count);
    for (int i = 0; i < count; i++) {
      assertSameBatch(first.get(i), second.get(i));
    }
    assertFalse(Arrays.equals(order(a, 0), order(a, 1)), "each epoch has its own order");
    Batches other = Batches.packed(EXAMPLES, BUDGET).seed(12).build();
    assertFalse(Arrays.equals(order(a, 0), order(other, 0)), "another seed, another order");
    int[] fileOrder = new int[N];
    Arrays.setAll(fileOrder, i -> i);
    Batches unshuffled = Batches.packed(EXAMPLES, BUDGET).shuffle(false).build();
    assertArrayEquals(fileOrder, order(unshuffled, 0));
    assertArrayEquals(fileOrder, order(unshuffled, 5));
  }

  /** The examples of an epoch in the order served. */
  private static int[] order(Batches batches, int epoch) {
    List<Integer> out = new ArrayList<>();
    for (int b = 0; b < batches.batchesInEpoch(epoch); b++) {
      for (int e : batches.batch(new Batches.Position(epoch, b)).examples()) {
        out.add(e);
      }
    }
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  @Test
  void aRestoredCursorReplaysTheUninterruptedRun() {
    Batches batches = Batches.packed(EXAMPLES, BUDGET).seed(5).build();
    int perEpoch = batches.batchesInEpoch(0);
    long total = batches.batchesIn(3) + 4;
    List<Batch> uninterrupted = read(batches, total);
    for (int stop : new int[] {0, 1, perEpoch - 1, perEpoch, perEpoch + 2, (int) total - 1}) {
      Batches.Cursor cursor = batches.cursor(new Batches.Position(0, 0));
      for (int i = 0; i < stop; i++) {
        cursor.next();
      }
      Batches.Position saved = cursor.position();
      assertEquals(batches.position(stop), saved);
      // a fresh process: new Batches over the same data, cursor restored from the saved (epoch, index)
      Batches.Cursor resumed = Batches.packed(EXAMPLES, BUDGET).seed(5).build()
          .cursor(new Batches.Position(saved.epoch(), saved.index()));
      for (int i = stop; i < total; i++) {
        assertSameBatch(uninterrupted.get(i), resumed.next());
      }
    }
    assertEquals(new Batches.Position(1, 0), batches.position(perEpoch));
    assertEquals(new Batches.Position(0, 0), batches.cursor(new Batches.Position(0, 0)).position());
  }

  @Test
  void theTrainersSourceServesBatchStepTimesAccumulationPlusMicro() {
    Batches batches = Batches.packed(EXAMPLES, BUDGET).seed(9).build();
    int accumulation = 3;
    Trainer.BatchSource<Batch> source = batches.source(accumulation);
    long steps = batches.steps(2, accumulation);
    assertEquals((batches.batchesIn(2) + 2) / 3, steps);
    List<Batch> sequence = read(batches, steps * accumulation);
    // resumed at step 4 (the trainer restores its step from the checkpoint): the same micro-batches
    for (long step = 4; step < steps; step++) {
      for (int micro = 0; micro < accumulation; micro++) {
        assertSameBatch(sequence.get((int) (step * accumulation + micro)), source.batch(step, micro));
      }
    }
    assertThrows(IllegalArgumentException.class, () -> source.batch(0, accumulation));
    assertThrows(IllegalArgumentException.class, () -> source.batch(-1, 0));
  }

  @Test
  void paddingPadsEachExampleToTheLongestOfItsBatch() {
    Batches batches = Batches.padded(EXAMPLES, 4).padId(CharTokenizer.PAD).seed(2).build();
    assertEquals(10, batches.batchesInEpoch(0));
    int[] seen = new int[N];
    for (int b = 0; b < 10; b++) {
      Batch batch = batches.batch(new Batches.Position(0, b));
      assertEquals(b < 9 ? 4 : 1, batch.examples().length);
      assertEquals(batch.examples().length, batch.inputIds().size());
      int longest = Arrays.stream(batch.examples()).map(i -> EXAMPLES.get(i).length()).max().orElseThrow();
      long scored = 0;
      for (int d = 0; d < batch.examples().length; d++) {
        Example e = EXAMPLES.get(batch.examples()[d]);
        seen[batch.examples()[d]]++;
        int[] ids = batch.inputIds().get(d), labels = batch.labels().get(d);
        assertEquals(longest, ids.length);
        assertArrayEquals(e.inputIds(), Arrays.copyOf(ids, e.length()));
        assertArrayEquals(e.labels(), Arrays.copyOf(labels, e.length()));
        for (int t = e.length(); t < longest; t++) {
          assertEquals(CharTokenizer.PAD, ids[t]);
          assertEquals(Example.IGNORE, labels[t]);
        }
        scored += e.scoredTokens();
      }
      assertEquals(scored, batch.scoredTokens());
    }
    assertTrue(Arrays.stream(seen).allMatch(c -> c == 1));
  }

  @Test
  void packedFilledAndPaddedBatchesGiveTheModelTheSameLoss() throws Exception {
    List<Example> examples = examples(6, 4);
    List<Batch> variants = List.of(
        Batches.packed(examples, 6 * SEQ_LEN).shuffle(false).fillToBudget(false).build().batch(0),
        Batches.packed(examples, 8 * SEQ_LEN).shuffle(false).build().batch(0),
        Batches.padded(examples, 6).shuffle(false).padId(3).build().batch(0));
    try (Backend backend = new CpuBackend(); LlamaForCausalLM model = TinyLlama.build(backend, 8)) {
      double[] losses = new double[variants.size()];
      for (int v = 0; v < variants.size(); v++) {
        Batch batch = variants.get(v);
        assertEquals(6, batch.examples().length);
        try (TokenBatch packed = batch.pack(backend)) {
          assertEquals(batch.tokens(), packed.tokens());
          assertEquals(batch.scoredTokens(), packed.scoredTokens());
          losses[v] = model.forward(packed, false).loss();
        }
      }
      assertEquals(8 * SEQ_LEN, variants.get(1).tokens());
      assertTrue(variants.get(2).tokens() > variants.get(0).tokens());
      // the same scored tokens seen through the same attention spans: equal up to summation order
      assertEquals(losses[0], losses[1], 1e-6 * Math.abs(losses[0]));
      assertEquals(losses[0], losses[2], 1e-6 * Math.abs(losses[0]));
    }
  }

  @Test
  void badSettingsAreRefused() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Batches.packed(EXAMPLES, SEQ_LEN - 1).build());
    assertTrue(e.getMessage().startsWith("batchTokens: example "), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Batches.packed(List.of(), BUDGET).build());
    assertThrows(IllegalArgumentException.class, () -> Batches.padded(EXAMPLES, 0).build());
    assertThrows(IllegalArgumentException.class, () -> Batches.padded(EXAMPLES, 4).padId(-1).build());
    Batches batches = Batches.padded(EXAMPLES, 4).build();
    e = assertThrows(IllegalArgumentException.class, () -> batches.batch(new Batches.Position(0, 10)));
    assertTrue(e.getMessage().contains("epoch 0 has 10 batches, got index 10"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> batches.position(-1));
  }
}
