package dev.plora.finetune;

import dev.plora.data.Example;
import dev.plora.model.LmHeadLoss;
import dev.plora.model.TokenBatch;
import dev.plora.model.llama.LlamaForCausalLM;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The mean token loss of a model over examples: each example's natural-log cross-entropy averaged
 * over its scored tokens, and the whole set's averaged over all scored tokens (so long examples
 * weigh by their length, as a training loss does). Dropout is off while it runs.
 */
public final class Evaluation {
  private Evaluation() {}

  /** One example's mean loss over its {@code tokens} scored tokens (NaN when it has none). */
  public record ExampleLoss(double loss, long tokens) {}

  /** The set's mean token loss, its perplexity exp(loss), the scored-token count, and per example. */
  public record Result(double loss, long tokens, double perplexity, List<ExampleLoss> examples) {
    public Map<String, Object> toJson(boolean withExamples) {
      Map<String, Object> m = new java.util.LinkedHashMap<>();
      m.put("loss", finite(loss));
      m.put("tokens", tokens);
      m.put("perplexity", finite(perplexity));
      if (withExamples) {
        List<Object> list = new ArrayList<>();
        for (ExampleLoss e : examples) {
          Map<String, Object> one = new java.util.LinkedHashMap<>();
          one.put("loss", finite(e.loss()));
          one.put("tokens", e.tokens());
          list.add(one); // mutable: a caller may add its own per-example fields
        }
        m.put("examples", list);
      }
      return m;
    }

    static Object finite(double v) {
      return Double.isFinite(v) ? v : null;
    }
  }

  /** Evaluates {@code examples} one at a time (per-example losses need one batch each). */
  public static Result evaluate(LlamaForCausalLM model, List<Example> examples) {
    if (model == null || examples == null || examples.isEmpty()) {
      throw new IllegalArgumentException("model and examples: expected a model and at least one example");
    }
    List<ExampleLoss> each = new ArrayList<>(examples.size());
    double sum = 0;
    long tokens = 0;
    boolean training = model.isTraining();
    model.train(false);
    try {
      for (Example e : examples) {
        try (TokenBatch batch = TokenBatch.pack(model.backend(), List.of(e.inputIds()), List.of(e.labels()))) {
          if (batch.scoredTokens() == 0) {
            each.add(new ExampleLoss(Double.NaN, 0));
            continue;
          }
          LmHeadLoss.Result r = model.forward(batch, false);
          each.add(new ExampleLoss(r.loss(), r.tokens()));
          sum += r.loss() * r.tokens();
          tokens += r.tokens();
        }
      }
    } finally {
      model.train(training);
    }
    double loss = tokens == 0 ? Double.NaN : sum / tokens;
    return new Result(loss, tokens, Math.exp(loss), List.copyOf(each));
  }
}
