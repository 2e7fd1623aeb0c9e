package dev.plora.data;

import dev.plora.text.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Examples in memory, in file order, with the counts of how they were read. */
public final class Dataset {
  private final List<Example> examples;
  private final ReadStats stats;

  Dataset(List<Example> examples, ReadStats stats) {
    this.examples = List.copyOf(examples);
    this.stats = stats;
  }

  /**
   * Reads a JSONL file, one example a line (see {@link DataFormat}); blank lines are skipped. A bad
   * line throws {@link DataFormatException} naming the file, the line and why, or with
   * {@link ReadOptions#skipBad} is skipped and counted in {@link #stats}.
   */
  public static Dataset read(Path file, Tokenizer tokenizer, ReadOptions options) throws IOException {
    return JsonlReader.read(file, tokenizer, options);
  }

  public static Dataset of(List<Example> examples) {
    return new Dataset(examples, ReadStats.of(null, examples));
  }

  public List<Example> examples() {
    return examples;
  }

  public int size() {
    return examples.size();
  }

  public ReadStats stats() {
    return stats;
  }

  /** A training part and a held-out part, each in file order. */
  public record Split(Dataset train, Dataset heldOut) {}

  /**
   * Holds out {@code round(fraction · size)} examples (at least one when the fraction is above 0)
   * chosen by {@code seed}: the same seed always holds out the same examples.
   */
  public Split split(double fraction, long seed) {
    if (!(fraction >= 0 && fraction < 1)) {
      throw new IllegalArgumentException("fraction: expected a held-out fraction in [0, 1), got " + fraction);
    }
    int n = examples.size();
    int held = fraction == 0 ? 0 : (int) Math.max(1, Math.round(fraction * n));
    if (held >= n) {
      throw new IllegalArgumentException("fraction: holding out " + fraction + " of " + n + " examples leaves none "
          + "to train on");
    }
    int[] chosen = Arrays.copyOf(Shuffle.permutation(n, seed, -1), held);
    Arrays.sort(chosen);
    List<Example> train = new ArrayList<>(n - held), heldOut = new ArrayList<>(held);
    for (int i = 0, c = 0; i < n; i++) {
      if (c < held && chosen[c] == i) {
        heldOut.add(examples.get(i));
        c++;
      } else {
        train.add(examples.get(i));
      }
    }
    return new Split(new Dataset(train, ReadStats.of(stats.format(), train)),
        new Dataset(heldOut, ReadStats.of(stats.format(), heldOut)));
  }
}
