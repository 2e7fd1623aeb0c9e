package dev.plora.lora;

import dev.plora.testing.Philox;

/** The LoRA layer's forward and backward in float64, written plainly (docs/design.md §2). */
final class LoraReference {
  final int m, k, n, r;
  final double[] y, dx, dA, dB;

  /**
   * x [m,k], w [n,k], bias [n] or null, a [r,k], b [n,r], dy [m,n]; dropout p with the masks
   * of (seed, stream) as the kernels draw them.
   */
  LoraReference(float[] x, float[] w, float[] bias, float[] a, float[] b, float[] dy, int m, int k, int n, int r,
      double s, float p, long seed, long stream) {
    this.m = m;
    this.k = k;
    this.n = n;
    this.r = r;
    double[] mask = new double[m * k];
    for (int i = 0; i < m * k; i++) {
      mask[i] = Philox.keep(seed, stream, i, p) ? 1.0 / (1.0 - p) : 0.0;
    }
    double[] sS = new double[m * r];
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < r; j++) {
        double acc = 0;
        for (int t = 0; t < k; t++) {
          acc += x[i * k + t] * mask[i * k + t] * a[j * k + t];
        }
        sS[i * r + j] = acc;
      }
    }
    y = new double[m * n];
    for (int i = 0; i < m; i++) {
      for (int o = 0; o < n; o++) {
        double acc = bias == null ? 0 : bias[o];
        for (int t = 0; t < k; t++) {
          acc += (double) x[i * k + t] * w[o * k + t];
        }
        for (int j = 0; j < r; j++) {
          acc += s * sS[i * r + j] * b[o * r + j];
        }
        y[i * n + o] = acc;
      }
    }
    dB = new double[n * r];
    double[] dS = new double[m * r];
    for (int o = 0; o < n; o++) {
      for (int j = 0; j < r; j++) {
        double acc = 0;
        for (int i = 0; i < m; i++) {
          acc += dy[i * n + o] * sS[i * r + j];
        }
        dB[o * r + j] = s * acc;
      }
    }
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < r; j++) {
        double acc = 0;
        for (int o = 0; o < n; o++) {
          acc += dy[i * n + o] * b[o * r + j];
        }
        dS[i * r + j] = s * acc;
      }
    }
    dA = new double[r * k];
    for (int j = 0; j < r; j++) {
      for (int t = 0; t < k; t++) {
        double acc = 0;
        for (int i = 0; i < m; i++) {
          acc += dS[i * r + j] * x[i * k + t] * mask[i * k + t];
        }
        dA[j * k + t] = acc;
      }
    }
    dx = new double[m * k];
    for (int i = 0; i < m; i++) {
      for (int t = 0; t < k; t++) {
        double acc = 0;
        for (int o = 0; o < n; o++) {
          acc += dy[i * n + o] * w[o * k + t];
        }
        double lora = 0;
        for (int j = 0; j < r; j++) {
          lora += dS[i * r + j] * a[j * k + t];
        }
        dx[i * k + t] = acc + mask[i * k + t] * lora;
      }
    }
  }
}
