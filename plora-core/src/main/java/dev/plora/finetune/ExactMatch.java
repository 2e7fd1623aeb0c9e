package dev.plora.finetune;

import dev.plora.data.Example;
import dev.plora.generate.GenerationConfig;
import dev.plora.generate.Generator;
import dev.plora.model.llama.LlamaForCausalLM;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Greedy exact-match accuracy: for each example whose scored tokens are one run at its end (a
 * prompt, then the completion and EOS), the model continues the prompt greedily for as many tokens
 * as the reference has, and matches when it produces the reference exactly (stopping at a stop
 * token the reference ends with counts). Other examples (several assistant turns, every token
 * scored) have no single answer and are left out.
 */
public final class ExactMatch {
  private ExactMatch() {}

  /** Per example: true or false, or null when it has no single answer; and the accuracy over the rest. */
  public record Result(double accuracy, int answered, int matched, List<Boolean> matches) {}

  public static Result evaluate(LlamaForCausalLM model, List<Example> examples, Set<Integer> stopTokenIds) {
    List<Boolean> matches = new ArrayList<>(examples.size());
    int answered = 0, matched = 0;
    for (Example e : examples) {
      int start = answerStart(e);
      if (start < 0) {
        matches.add(null);
        continue;
      }
      int[] prompt = Arrays.copyOf(e.inputIds(), start);
      int[] reference = Arrays.copyOfRange(e.inputIds(), start, e.inputIds().length);
      Generator g = new Generator(model, GenerationConfig.greedy(reference.length).withStopTokenIds(stopTokenIds));
      boolean match = Arrays.equals(g.generate(prompt).tokens(), reference);
      matches.add(match);
      answered++;
      matched += match ? 1 : 0;
    }
    return new Result(answered == 0 ? Double.NaN : matched / (double) answered, answered, matched,
        java.util.Collections.unmodifiableList(matches));
  }

  /** Where the answer starts: the first scored token, when every token from there on is scored and it is not the first. */
  static int answerStart(Example e) {
    int[] labels = e.labels();
    int first = -1;
    for (int i = 0; i < labels.length; i++) {
      if (labels[i] != Example.IGNORE && first < 0) {
        first = i;
      } else if (labels[i] == Example.IGNORE && first >= 0) {
        return -1;
      }
    }
    return first <= 0 ? -1 : first;
  }
}
