package dev.plora.model.llama;

import java.util.List;
import java.util.Map;

/**
 * A Llama-family model in float64, written plainly from Hugging Face's definitions, for the
 * model's tests: the logits of packed documents and their mean cross-entropy over scored tokens.
 */
final class LlamaReference {
  private final LlamaConfig c;
  private final Map<String, float[]> w;
  private final float[] invFreq;

  LlamaReference(LlamaConfig config, Map<String, float[]> weights) {
    this.c = config;
    this.w = weights;
    this.invFreq = config.inverseFrequencies();
  }

  /** Logits [tokens, vocab] of the documents packed one after another. */
  double[][] logits(List<int[]> documents) {
    int n = 0;
    for (int[] d : documents) {
      n += d.length;
    }
    int hidden = c.hiddenSize();
    double[][] h = new double[n][];
    int[] pos = new int[n], start = new int[n];
    int row = 0;
    for (int[] d : documents) {
      for (int t = 0; t < d.length; t++, row++) {
        h[row] = new double[hidden];
        for (int j = 0; j < hidden; j++) {
          h[row][j] = w.get("model.embed_tokens.weight")[d[t] * hidden + j];
        }
        pos[row] = t;
        start[row] = row - t;
      }
    }
    for (int l = 0; l < c.layers(); l++) {
      String p = "model.layers." + l + ".";
      double[][] a = attention(p, norm(h, w.get(p + "input_layernorm.weight")), pos, start);
      for (int t = 0; t < n; t++) {
        for (int j = 0; j < hidden; j++) {
          h[t][j] += a[t][j];
        }
      }
      double[][] x = norm(h, w.get(p + "post_attention_layernorm.weight"));
      double[][] g = linear(x, p + "mlp.gate_proj"), u = linear(x, p + "mlp.up_proj");
      for (int t = 0; t < n; t++) {
        for (int j = 0; j < g[t].length; j++) {
          g[t][j] = g[t][j] / (1 + Math.exp(-g[t][j])) * u[t][j];
        }
      }
      double[][] m = linear(g, p + "mlp.down_proj");
      for (int t = 0; t < n; t++) {
        for (int j = 0; j < hidden; j++) {
          h[t][j] += m[t][j];
        }
      }
    }
    double[][] hn = norm(h, w.get("model.norm.weight"));
    return project(hn, w.get(c.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight"), null,
        c.vocabSize());
  }

  /** Mean cross-entropy of logits[t] against labels[t+1] within each document, −100 ignored. */
  double loss(List<int[]> documents, List<int[]> labels) {
    double[][] z = logits(documents);
    double sum = 0;
    int scored = 0, row = 0;
    for (int d = 0; d < documents.size(); d++) {
      for (int t = 0; t < documents.get(d).length; t++, row++) {
        int target = t + 1 < documents.get(d).length ? labels.get(d)[t + 1] : -100;
        if (target == -100) {
          continue;
        }
        double max = Double.NEGATIVE_INFINITY, s = 0;
        for (double v : z[row]) {
          max = Math.max(max, v);
        }
        for (double v : z[row]) {
          s += Math.exp(v - max);
        }
        sum += max + Math.log(s) - z[row][target];
        scored++;
      }
    }
    return sum / scored;
  }

  private double[][] attention(String p, double[][] x, int[] pos, int[] start) {
    int n = x.length, heads = c.heads(), kv = c.kvHeads(), dim = c.headDim();
    double[][] q = linear(x, p + "self_attn.q_proj"), k = linear(x, p + "self_attn.k_proj");
    double[][] v = linear(x, p + "self_attn.v_proj");
    if (c.architecture().normsHeads()) {
      normHeads(q, heads, w.get(p + "self_attn.q_norm.weight"));
      normHeads(k, kv, w.get(p + "self_attn.k_norm.weight"));
    }
    rope(q, heads, pos);
    rope(k, kv, pos);
    double[][] out = new double[n][heads * dim];
    for (int t = 0; t < n; t++) {
      for (int hd = 0; hd < heads; hd++) {
        int g = hd / (heads / kv);
        double[] s = new double[t + 1];
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int j = start[t]; j <= t; j++) {
          double dot = 0;
          for (int d = 0; d < dim; d++) {
            dot += q[t][hd * dim + d] * k[j][g * dim + d];
          }
          s[j] = dot / Math.sqrt(dim);
          max = Math.max(max, s[j]);
        }
        for (int j = start[t]; j <= t; j++) {
          s[j] = Math.exp(s[j] - max);
          sum += s[j];
        }
        for (int j = start[t]; j <= t; j++) {
          for (int d = 0; d < dim; d++) {
            out[t][hd * dim + d] += s[j] / sum * v[j][g * dim + d];
          }
        }
      }
    }
    return linear(out, p + "self_attn.o_proj");
  }

  private void rope(double[][] a, int heads, int[] pos) {
    int dim = c.headDim(), half = dim / 2;
    for (int t = 0; t < a.length; t++) {
      for (int j = 0; j < half; j++) {
        float angle = pos[t] * invFreq[j]; // HF's fp32 product
        double cos = Math.cos(angle), sin = Math.sin(angle);
        for (int hd = 0; hd < heads; hd++) {
          int i1 = hd * dim + j, i2 = i1 + half;
          double x1 = a[t][i1], x2 = a[t][i2];
          a[t][i1] = x1 * cos - x2 * sin;
          a[t][i2] = x2 * cos + x1 * sin;
        }
      }
    }
  }

  private double[][] norm(double[][] x, float[] weight) {
    double[][] y = new double[x.length][];
    for (int t = 0; t < x.length; t++) {
      y[t] = x[t].clone();
      normRow(y[t], 0, y[t].length, weight);
    }
    return y;
  }

  private void normHeads(double[][] a, int heads, float[] weight) {
    for (double[] row : a) {
      for (int hd = 0; hd < heads; hd++) {
        normRow(row, hd * c.headDim(), c.headDim(), weight);
      }
    }
  }

  private void normRow(double[] v, int from, int len, float[] weight) {
    double ss = 0;
    for (int j = 0; j < len; j++) {
      ss += v[from + j] * v[from + j];
    }
    double rstd = 1 / Math.sqrt(ss / len + c.rmsNormEps());
    for (int j = 0; j < len; j++) {
      v[from + j] *= rstd * weight[j];
    }
  }

  private double[][] linear(double[][] x, String module) {
    float[] weight = w.get(module + ".weight");
    int out = weight.length / x[0].length;
    return project(x, weight, w.get(module + ".bias"), out);
  }

  private static double[][] project(double[][] x, float[] weight, float[] bias, int out) {
    int in = x[0].length;
    double[][] y = new double[x.length][out];
    for (int t = 0; t < x.length; t++) {
      for (int j = 0; j < out; j++) {
        double s = bias == null ? 0 : bias[j];
        for (int k = 0; k < in; k++) {
          s += x[t][k] * weight[j * in + k];
        }
        y[t][j] = s;
      }
    }
    return y;
  }
}
