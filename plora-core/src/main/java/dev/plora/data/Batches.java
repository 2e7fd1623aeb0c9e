package dev.plora.data;

import dev.plora.train.Trainer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;

/**
 * A dataset's batches, epoch after epoch, as a pure function of the batch's number: each epoch
 * shuffles the examples by (seed, epoch) and cuts the order into batches, so batch k is the same
 * in every run, and a run resumed at any step — or a {@link Cursor} restored to a saved
 * {@link Position} — replays the uninterrupted run's data.
 *
 * <p><b>Packed</b> (the default): consecutive examples of the order fill a batch while their tokens
 * fit {@code batchTokens}; an example is never split, and each stays its own document for
 * attention and positions. With {@link Builder#fillToBudget} (on by default) the rest of the
 * budget is one-token padding documents, so every batch has exactly {@code batchTokens} tokens and
 * the model plans its activation memory once. <b>Padded</b>: {@code batchSize} examples a batch,
 * each padded at its end with the pad id to the longest, pad labels {@link Example#IGNORE}: the
 * loss is that of the examples alone (causal attention keeps the pads from every real token).
 */
public final class Batches {
  /** How examples make a batch. */
  public enum Mode { PACKED, PADDED }

  /** Where a batch lies: its epoch and its index in that epoch, both from 0. */
  public record Position(int epoch, int index) {
    public Position {
      if (epoch < 0 || index < 0) {
        throw new IllegalArgumentException("position: expected epoch >= 0 and index >= 0, got " + epoch + ", " + index);
      }
    }
  }

  private final List<Example> examples;
  private final Mode mode;
  private final int size;
  private final int padId;
  private final boolean shuffle;
  private final long seed;
  private final boolean fill;
  // the plan of the epoch used last, and the batch count of every epoch planned so far
  private int plannedEpoch = -1;
  private Plan plan;
  private final List<Integer> counts = new ArrayList<>();

  /** An epoch's order of examples, and where each batch starts in it (one more for the end). */
  private record Plan(int[] order, int[] starts) {
    int batches() {
      return starts.length - 1;
    }
  }

  private Batches(Builder b) {
    this.examples = List.copyOf(b.examples);
    this.mode = b.mode;
    this.size = b.size;
    this.padId = b.padId;
    this.shuffle = b.shuffle;
    this.seed = b.seed;
    this.fill = b.fill;
  }

  /** Packed batches of at most {@code batchTokens} tokens, shuffled with seed 0 until told otherwise. */
  public static Builder packed(List<Example> examples, int batchTokens) {
    return new Builder(examples, Mode.PACKED, batchTokens);
  }

  /** Padded batches of {@code batchSize} examples (the last of an epoch may have fewer). */
  public static Builder padded(List<Example> examples, int batchSize) {
    return new Builder(examples, Mode.PADDED, batchSize);
  }

  public synchronized int batchesInEpoch(int epoch) {
    while (counts.size() <= epoch) {
      counts.add(plan(counts.size()).batches());
    }
    return counts.get(epoch);
  }

  /** Batches in the first {@code epochs} epochs. */
  public long batchesIn(int epochs) {
    long n = 0;
    for (int e = 0; e < epochs; e++) {
      n += batchesInEpoch(e);
    }
    return n;
  }

  /** Optimizer steps that cover {@code epochs} epochs with {@code accumulation} batches a step. */
  public long steps(int epochs, int accumulation) {
    if (epochs < 1 || accumulation < 1) {
      throw new IllegalArgumentException("epochs and accumulation: expected >= 1, got " + epochs + ", " + accumulation);
    }
    return (batchesIn(epochs) + accumulation - 1) / accumulation;
  }

  /** The position of batch {@code number}, counting from 0 over epochs one after another. */
  public Position position(long number) {
    if (number < 0) {
      throw new IllegalArgumentException("number: expected a batch number >= 0, got " + number);
    }
    int epoch = 0;
    for (long left = number; ; epoch++) {
      int n = batchesInEpoch(epoch);
      if (left < n) {
        return new Position(epoch, (int) left);
      }
      left -= n;
    }
  }

  public Batch batch(long number) {
    return batch(position(number));
  }

  public synchronized Batch batch(Position at) {
    Plan p = plan(at.epoch());
    if (at.index() >= p.batches()) {
      throw new IllegalArgumentException("position: epoch " + at.epoch() + " has " + p.batches() + " batches, got index "
          + at.index());
    }
    int[] members = Arrays.copyOfRange(p.order(), p.starts()[at.index()], p.starts()[at.index() + 1]);
    List<int[]> ids = new ArrayList<>(), labels = new ArrayList<>();
    int longest = 0, tokens = 0;
    for (int m : members) {
      longest = Math.max(longest, examples.get(m).length());
      tokens += examples.get(m).length();
    }
    for (int m : members) {
      Example e = examples.get(m);
      int length = mode == Mode.PADDED ? longest : e.length();
      int[] id = Arrays.copyOf(e.inputIds(), length), label = Arrays.copyOf(e.labels(), length);
      Arrays.fill(id, e.length(), length, padId);
      Arrays.fill(label, e.length(), length, Example.IGNORE);
      ids.add(id);
      labels.add(label);
    }
    for (int t = tokens; mode == Mode.PACKED && fill && t < size; t++) {
      ids.add(new int[] {padId});
      labels.add(new int[] {Example.IGNORE});
    }
    return new Batch(members, ids, labels);
  }

  /**
   * The trainer's batch source: micro-batch {@code micro} of step {@code step} is batch
   * {@code step · accumulation + micro}, so a run restored from a checkpoint at step s reads on
   * from exactly where the saved run was.
   */
  public Trainer.BatchSource<Batch> source(int accumulation) {
    if (accumulation < 1) {
      throw new IllegalArgumentException("accumulation: expected >= 1, got " + accumulation);
    }
    return (step, micro) -> {
      if (step < 0 || micro < 0 || micro >= accumulation) {
        throw new IllegalArgumentException("step and micro: expected step >= 0 and micro in [0, " + accumulation
            + "), got " + step + ", " + micro);
      }
      return batch(Math.multiplyExact(step, (long) accumulation) + micro);
    };
  }

  /** Reads batches on from {@code from} (epoch 0, index 0 for a fresh run), epoch after epoch. */
  public Cursor cursor(Position from) {
    return new Cursor(from);
  }

  /** An endless iterator over the batches whose {@link #position} can be saved and restored. */
  public final class Cursor implements Iterator<Batch> {
    private int epoch, index;

    private Cursor(Position from) {
      epoch = from.epoch();
      index = from.index();
    }

    /** The position of the batch {@link #next} returns. */
    public Position position() {
      while (index >= batchesInEpoch(epoch)) {
        index -= batchesInEpoch(epoch);
        epoch++;
      }
      return new Position(epoch, index);
    }

    @Override
    public boolean hasNext() {
      return true;
    }

    @Override
    public Batch next() {
      Batch b = batch(position());
      index++;
      return b;
    }
  }

  private Plan plan(int epoch) {
    if (epoch != plannedEpoch) {
      int n = examples.size();
      int[] order = shuffle ? Shuffle.permutation(n, seed, epoch) : identity(n);
      List<Integer> starts = new ArrayList<>(List.of(0));
      for (int i = 0, used = 0; i < n; i++) {
        int length = examples.get(order[i]).length();
        boolean full = mode == Mode.PADDED ? i - starts.get(starts.size() - 1) == size : used + length > size;
        if (full) {
          starts.add(i);
          used = 0;
        }
        used += length;
      }
      starts.add(n);
      plan = new Plan(order, starts.stream().mapToInt(Integer::intValue).toArray());
      plannedEpoch = epoch;
    }
    return plan;
  }

  private static int[] identity(int n) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    return p;
  }

  public static final class Builder {
    private final List<Example> examples;
    private final Mode mode;
    private final int size;
    private int padId;
    private boolean shuffle = true;
    private long seed;
    private boolean fill = true;

    private Builder(List<Example> examples, Mode mode, int size) {
      this.examples = examples;
      this.mode = mode;
      this.size = size;
    }

    /** The seed of each epoch's shuffle. Default 0. */
    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /** Off: every epoch in the examples' own order (evaluation). Default on. */
    public Builder shuffle(boolean shuffle) {
      this.shuffle = shuffle;
      return this;
    }

    /** The id of padding tokens (never scored, never attended to by a real token). Default 0. */
    public Builder padId(int padId) {
      this.padId = padId;
      return this;
    }

    /** Packed batches: fill each to exactly {@code batchTokens} with one-token padding documents. Default on. */
    public Builder fillToBudget(boolean fill) {
      this.fill = fill;
      return this;
    }

    public Batches build() {
      if (examples == null || examples.isEmpty()) {
        throw new IllegalArgumentException("examples: expected at least one example, got none");
      }
      String what = mode == Mode.PACKED ? "batchTokens" : "batchSize";
      if (size < 1) {
        throw new IllegalArgumentException(what + ": expected >= 1, got " + size);
      }
      if (padId < 0) {
        throw new IllegalArgumentException("padId: expected an id >= 0, got " + padId);
      }
      for (int i = 0; mode == Mode.PACKED && i < examples.size(); i++) {
        if (examples.get(i).length() > size) {
          throw new IllegalArgumentException("batchTokens: example " + i + " has " + examples.get(i).length()
              + " tokens, more than a batch of " + size + " holds (set it to at least the sequence length)");
        }
      }
      return new Batches(this);
    }
  }
}
