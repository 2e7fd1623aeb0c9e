package dev.plora.demo.lm;

import dev.plora.data.Batch;
import dev.plora.data.Example;
import dev.plora.train.Trainer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A generated language: a random bigram chain over {@code vocab} tokens where each token is followed
 * by one of {@code branch} successors, with weights drawn from a flat Dirichlet. A sequence starts at
 * a uniform token and scores every token after the first. Sequences, batches and example sets are
 * pure functions of their seeds.
 *
 * <p>{@link #permuted} gives the language whose token t is followed as token π(t) was: the same
 * successor sets under a random relabelling of the inputs. Telling that language from the original
 * needs a full-rank change of what each input token means, which is what the demo asks a rank-r
 * adapter to learn.
 */
public record BigramLanguage(int vocab, int branch, int seqLen, int[][] next, double[][] cumulative) {

  /** A language drawn from {@code seed}. */
  public static BigramLanguage of(int vocab, int branch, int seqLen, long seed) {
    if (branch < 1 || branch > vocab) {
      throw new IllegalArgumentException("branch: expected 1.." + vocab + ", got " + branch);
    }
    if (seqLen < 2) {
      throw new IllegalArgumentException("seqLen: expected >= 2, got " + seqLen);
    }
    SplittableRandom rng = new SplittableRandom(seed);
    int[][] next = new int[vocab][branch];
    double[][] cum = new double[vocab][branch];
    for (int t = 0; t < vocab; t++) {
      int[] successors = permutation(vocab, rng);
      double sum = 0;
      for (int j = 0; j < branch; j++) {
        next[t][j] = successors[j];
        cum[t][j] = sum += -Math.log(1 - rng.nextDouble()); // exponential draws: Dirichlet(1) once normalised
      }
      for (int j = 0; j < branch; j++) {
        cum[t][j] /= sum;
      }
    }
    return new BigramLanguage(vocab, branch, seqLen, next, cum);
  }

  /** This language with its inputs relabelled by a random permutation π: token t is followed as π(t) was. */
  public BigramLanguage permuted(long seed) {
    int[] pi = permutation(vocab, new SplittableRandom(seed));
    int[][] n = new int[vocab][];
    double[][] c = new double[vocab][];
    for (int t = 0; t < vocab; t++) {
      n[t] = next[pi[t]];
      c[t] = cumulative[pi[t]];
    }
    return new BigramLanguage(vocab, branch, seqLen, n, c);
  }

  /** Whether {@code b} may follow {@code a}. */
  public boolean allows(int a, int b) {
    for (int s : next[a]) {
      if (s == b) {
        return true;
      }
    }
    return false;
  }

  /** One sequence; the first token is not scored (label −100). */
  public Example example(SplittableRandom rng) {
    int[] ids = new int[seqLen], labels = new int[seqLen];
    ids[0] = rng.nextInt(vocab);
    labels[0] = -100;
    for (int i = 1; i < seqLen; i++) {
      ids[i] = sample(ids[i - 1], rng);
      labels[i] = ids[i];
    }
    return new Example(ids, labels);
  }

  private int sample(int t, SplittableRandom rng) {
    double u = rng.nextDouble();
    for (int j = 0; j < branch; j++) {
      if (u < cumulative[t][j]) {
        return next[t][j];
      }
    }
    return next[t][branch - 1];
  }

  /**
   * The entropy of the next token given the current one, averaged over tokens: the loss of a model
   * that knows the language exactly (the floor of any eval loss, up to the stationary weighting).
   */
  public double entropy() {
    double h = 0;
    for (double[] c : cumulative) {
      double previous = 0;
      for (double x : c) {
        double p = x - previous;
        previous = x;
        if (p > 0) {
          h -= p * Math.log(p);
        }
      }
    }
    return h / vocab;
  }

  /**
   * The loss of the language itself on {@code examples} (mean −ln p of each scored token given its
   * predecessor): the floor a model's eval loss on them approaches; −∞ never occurs for its own sequences.
   */
  public double loss(List<Example> examples) {
    double sum = 0;
    long n = 0;
    for (Example e : examples) {
      int[] ids = e.inputIds();
      for (int i = 1; i < ids.length; i++) {
        if (e.labels()[i] == -100) {
          continue;
        }
        double p = 0, previous = 0;
        for (int j = 0; j < branch; j++) {
          if (next[ids[i - 1]][j] == ids[i]) {
            p += cumulative[ids[i - 1]][j] - previous;
          }
          previous = cumulative[ids[i - 1]][j];
        }
        sum -= Math.log(p);
        n++;
      }
    }
    return sum / n;
  }

  /** {@code n} sequences drawn from {@code seed}. */
  public List<Example> examples(int n, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    List<Example> list = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      list.add(example(rng));
    }
    return list;
  }

  /** Training batches of {@code batch} sequences, batch k a pure function of (seed, k). */
  public Trainer.BatchSource<Batch> batches(int batch, long seed) {
    return mixture(List.of(this), batch, seed);
  }

  /** Batches whose sequences each come from one of {@code languages}, chosen at random. */
  public static Trainer.BatchSource<Batch> mixture(List<BigramLanguage> languages, int batch, long seed) {
    return (step, micro) -> {
      SplittableRandom rng = new SplittableRandom(seed * 1_000_003L + step * 31 + micro);
      List<int[]> ids = new ArrayList<>(batch), labels = new ArrayList<>(batch);
      int[] index = new int[batch];
      for (int b = 0; b < batch; b++) {
        Example e = languages.get(rng.nextInt(languages.size())).example(rng);
        ids.add(e.inputIds());
        labels.add(e.labels());
        index[b] = b;
      }
      return new Batch(index, ids, labels);
    };
  }

  static int[] permutation(int n, SplittableRandom rng) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    for (int i = n - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1), t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
